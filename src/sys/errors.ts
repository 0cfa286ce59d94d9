/**
 * Errors of the system layer. The native shim returns `-errno`; {@link sysError} turns that into a
 * {@link SysError} whose message names the call, the object and the errno, plus one sentence of
 * advice for the failures a user can fix (privilege, a missing TUN device).
 */
import { getSystemErrorMap } from 'node:util';
import { ClatdError } from '../core/errors.js';

/** A system call failed. `errno` is positive; `errnoName` is its symbolic name (`EPERM`). */
export class SysError extends ClatdError {
  readonly errno: number;
  readonly errnoName: string;
  readonly syscall: string;
  readonly object: string | undefined;
  constructor(errno: number, syscall: string, object?: string, hint?: string) {
    const [name, text] = describeErrno(errno);
    const what = object === undefined ? syscall : `${syscall} ${object}`;
    super(`${what}: ${name} (${text})${hint ? ` — ${hint}` : ''}`, 'ERR_CLATD_SYS');
    this.name = 'SysError';
    this.errno = errno;
    this.errnoName = name;
    this.syscall = syscall;
    this.object = object;
  }
}

/** The device or socket was closed (by us, or the interface went away): the loop should stop. */
export class ClosedError extends ClatdError {
  constructor(what: string) {
    super(`${what} is closed`, 'ERR_CLATD_CLOSED');
    this.name = 'ClosedError';
  }
}

let errnoMap: Map<number, [string, string]> | undefined;

/** `[name, description]` for a positive errno, from libuv's table (`[EPERM, operation not permitted]`). */
export function describeErrno(errno: number): [string, string] {
  errnoMap ??= getSystemErrorMap();
  return errnoMap.get(-errno) ?? [`errno ${errno}`, 'unknown error'];
}

/** The symbolic name of a positive errno (`ENOENT`), or `errno N` when unknown. */
export function errnoName(errno: number): string {
  return describeErrno(errno)[0];
}

/** Errno values by name, for comparisons in callers (`errno === Errno.EAGAIN`). */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  EMSGSIZE: 90,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ENETUNREACH: 101,
  ENOBUFS: 105,
  EBADFD: 77,
} as const;

/** The advice for failed privilege checks. */
export const PRIVILEGE_HINT = 'clatd needs CAP_NET_ADMIN and CAP_NET_RAW: run it as root or grant both capabilities';

/**
 * Builds the error for a failed call. EPERM/EACCES get the privilege sentence unless the caller
 * gives a more precise one in `hint`.
 */
export function sysError(errno: number, syscall: string, object?: string, hint?: string): SysError {
  const advice = hint ?? (errno === Errno.EPERM || errno === Errno.EACCES ? PRIVILEGE_HINT : undefined);
  return new SysError(errno, syscall, object, advice);
}

/** Returns `rc` when it is not negative; otherwise throws the {@link SysError} for `-rc`. */
export function check(rc: number, syscall: string, object?: string, hint?: string): number {
  if (rc < 0) throw sysError(-rc, syscall, object, hint);
  return rc;
}

/**
 * Whether an errno from a read or write means the fd or its device is gone for good.
 *
 * For the batch writers (writeBatch, sendBatch) this is the `fatal` class of the shim's errno
 * policy, written down once in native/clatd.c above write_errno_class; a test holds the two
 * equal. In short: EINTR is retried; `skip` errnos (EMSGSIZE, ENETUNREACH, EPERM, ...) cost one
 * packet; `end` errnos (EAGAIN, ENOBUFS, ENOMEM, ENETDOWN, EIO, EPIPE) cost that packet and the
 * rest of the batch, and the fd stays; `fatal` ones (these) cost the same and the fd is closed.
 * Every failed packet is counted in the set's stats; a writer returns -errno only when nothing
 * went out, and a fatal errno after some packets went out comes back on the next call.
 */
export function isClosedErrno(errno: number): boolean {
  return errno === Errno.EBADF || errno === Errno.EBADFD || errno === Errno.ENODEV || errno === Errno.ENXIO;
}

/** Errors of the netlink layer: errno name, which request and which object failed. */
import { getSystemErrorMap } from 'node:util';
import { ClatdError } from '../../core/errors.js';

const SYSTEM_ERRORS = getSystemErrorMap();

/** `EEXIST` for 17 (or -17); `errno 999` for a number libuv does not know. */
export function errnoName(errno: number): string {
  return SYSTEM_ERRORS.get(-Math.abs(errno))?.[0] ?? `errno ${Math.abs(errno)}`;
}

function errnoText(errno: number): string {
  return SYSTEM_ERRORS.get(-Math.abs(errno))?.[1] ?? 'unknown error';
}

/**
 * A netlink request the kernel refused, or a socket call that failed. The message reads like
 * `RTM_NEWROUTE 0.0.0.0/0 dev v4-eth0: EEXIST (file already exists)`, plus the kernel's extended
 * ack text when it sent one.
 */
export class NetlinkError extends ClatdError {
  /** Positive errno number. */
  readonly errno: number;
  /** `EEXIST`, `ENODEV`... */
  readonly errnoName: string;
  /** What was asked, e.g. `RTM_NEWROUTE 0.0.0.0/0 dev v4-eth0`. */
  readonly request: string;

  constructor(request: string, errno: number, detail?: string) {
    const name = errnoName(errno);
    super(`${request}: ${name} (${errnoText(errno)})${detail ? `: ${detail}` : ''}`, 'ERR_CLATD_NETLINK');
    this.name = 'NetlinkError';
    this.errno = Math.abs(errno);
    this.errnoName = name;
    this.request = request;
  }
}

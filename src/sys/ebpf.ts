/**
 * The bpf(2) commands the offload needs: an array map for its counters, loading a tc program,
 * attaching it with a tcx link (Linux ≥ 6.6; the link is an fd, so the program goes away with the
 * process however it ends), reading and writing the map, and running a program on a test packet
 * (BPF_PROG_TEST_RUN, for the tests). Each `union bpf_attr` is built here: its layout is the
 * kernel's stable ABI (linux/bpf.h), and Debian 12's headers, which the shim compiles against,
 * predate tcx, so the numbers are written down here with their names.
 */
import { native } from './addon.js';
import { Errno, SysError, sysError } from './errors.js';

// enum bpf_cmd
const BPF_MAP_CREATE = 0;
const BPF_MAP_LOOKUP_ELEM = 1;
const BPF_MAP_UPDATE_ELEM = 2;
const BPF_PROG_LOAD = 5;
const BPF_PROG_TEST_RUN = 10;
const BPF_MAP_GET_FD_BY_ID = 14;
const BPF_LINK_CREATE = 28;
// enum bpf_map_type, bpf_prog_type, bpf_attach_type
const BPF_MAP_TYPE_ARRAY = 2;
const BPF_PROG_TYPE_SCHED_CLS = 3;
const BPF_TCX_INGRESS = 46;
const BPF_TCX_EGRESS = 47;
/** sizeof(union bpf_attr) in the 6.1 headers; newer kernels accept a shorter attr (zero-extended). */
const ATTR_LEN = 144;
/** Names are at most 15 characters of [A-Za-z0-9_.] (BPF_OBJ_NAME_LEN 16, NUL included). */
const NAME_LEN = 16;

/** What EPERM from bpf(2) means for clatd. */
const BPF_PRIVILEGE_HINT =
  'the kernel fast path needs CAP_BPF as well as CAP_NET_ADMIN (--offload off does without it)';

function bpfError(errno: number, what: string, object?: string, hint?: string): SysError {
  return sysError(errno, what, object, hint ?? (errno === Errno.EPERM ? BPF_PRIVILEGE_HINT : undefined));
}

/** bpf(2) or its error; `hintFor` may say what an errno means for this command. */
function call(
  cmd: number,
  attr: Uint8Array,
  ptrs: (number | Uint8Array | null)[],
  what: string,
  object?: string,
  hintFor?: (errno: number) => string | undefined,
): number {
  const rc = native.bpf(cmd, attr, ptrs);
  if (rc < 0) throw bpfError(-rc, what, object, hintFor?.(-rc));
  return rc;
}

function putName(attr: Uint8Array, at: number, name: string): void {
  const n = name.replace(/[^A-Za-z0-9_.]/g, '_').slice(0, NAME_LEN - 1);
  for (let i = 0; i < n.length; i++) attr[at + i] = n.charCodeAt(i);
}

/** A BPF_MAP_TYPE_ARRAY of `entries` values of `valueSize` bytes, keyed by u32 index. */
export function createArrayMap(name: string, valueSize: number, entries: number): number {
  const attr = new Uint8Array(ATTR_LEN);
  const v = new DataView(attr.buffer);
  v.setUint32(0, BPF_MAP_TYPE_ARRAY, true);
  v.setUint32(4, 4, true); // key_size
  v.setUint32(8, valueSize, true);
  v.setUint32(12, entries, true);
  putName(attr, 28, name);
  return call(BPF_MAP_CREATE, attr, [], 'bpf(BPF_MAP_CREATE)', name);
}

/** Reads entry `index` of an array map into `value`. */
export function lookupArray(mapFd: number, index: number, value: Uint8Array): void {
  const attr = new Uint8Array(ATTR_LEN);
  const v = new DataView(attr.buffer);
  v.setUint32(0, mapFd, true);
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, index, true);
  call(BPF_MAP_LOOKUP_ELEM, attr, [8, key, 16, value], 'bpf(BPF_MAP_LOOKUP_ELEM)');
}

/** Writes entry `index` of an array map (BPF_ANY: an array's entries always exist). */
export function updateArray(mapFd: number, index: number, value: Uint8Array): void {
  const attr = new Uint8Array(ATTR_LEN);
  const v = new DataView(attr.buffer);
  v.setUint32(0, mapFd, true);
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, index, true);
  call(BPF_MAP_UPDATE_ELEM, attr, [8, key, 16, value], 'bpf(BPF_MAP_UPDATE_ELEM)');
}

/** An fd for the map with this id (another process's, as `map_id` in its fdinfo says: tests, tools). */
export function mapFdById(id: number): number {
  const attr = new Uint8Array(ATTR_LEN);
  new DataView(attr.buffer).setUint32(0, id, true);
  return call(BPF_MAP_GET_FD_BY_ID, attr, [], 'bpf(BPF_MAP_GET_FD_BY_ID)', String(id));
}

/** A program the verifier refused, with the end of its log (where the reason is). */
export class VerifierError extends SysError {
  readonly log: string;
  constructor(errno: number, name: string, log: string) {
    super(errno, 'bpf(BPF_PROG_LOAD)', name, `verifier: ${log.trim().split('\n').slice(-6).join(' | ')}`);
    this.name = 'VerifierError';
    this.log = log;
  }
}

/**
 * Loads a tc (sched_cls) program of encoded instructions; returns its fd. A refusal is loaded again
 * with the verifier's log on, so that the error says why.
 */
export function loadTcProgram(name: string, insns: Uint8Array): number {
  const license = new TextEncoder().encode('Apache-2.0\0');
  const load = (log: Uint8Array | null): number => {
    const attr = new Uint8Array(ATTR_LEN);
    const v = new DataView(attr.buffer);
    v.setUint32(0, BPF_PROG_TYPE_SCHED_CLS, true);
    v.setUint32(4, insns.length / 8, true);
    if (log !== null) {
      v.setUint32(24, 1, true); // log_level
      v.setUint32(28, log.length, true);
    }
    putName(attr, 48, name);
    return native.bpf(BPF_PROG_LOAD, attr, [8, insns, 16, license, 32, log]);
  };
  const rc = load(null);
  if (rc >= 0) return rc;
  if (rc !== -Errno.EACCES && rc !== -Errno.EINVAL) throw bpfError(-rc, 'bpf(BPF_PROG_LOAD)', name);
  const log = new Uint8Array(1 << 20);
  const again = load(log);
  if (again >= 0) return again; // cannot happen twice in a row, but an fd is an fd
  const end = log.indexOf(0);
  throw new VerifierError(-again, name, new TextDecoder().decode(log.subarray(0, end < 0 ? log.length : end)));
}

export type TcxDirection = 'ingress' | 'egress';

/** Attaches a tc program to a device with a tcx link (Linux ≥ 6.6); returns the link's fd. */
export function attachTcx(progFd: number, ifindex: number, direction: TcxDirection, object?: string): number {
  const attr = new Uint8Array(ATTR_LEN);
  const v = new DataView(attr.buffer);
  v.setUint32(0, progFd, true);
  v.setUint32(4, ifindex, true);
  v.setUint32(8, direction === 'ingress' ? BPF_TCX_INGRESS : BPF_TCX_EGRESS, true);
  // Kernels before 6.6 do not know the tcx attach types and say only EINVAL.
  return call(BPF_LINK_CREATE, attr, [], `bpf(BPF_LINK_CREATE tcx ${direction})`, object, (errno) =>
    errno === Errno.EINVAL ? 'tcx links need Linux 6.6 or later' : undefined,
  );
}

export interface TestRun {
  /** The program's return value. */
  readonly retval: number;
  /** Bytes of the packet after the program, in `out`. */
  readonly size: number;
}

/**
 * Runs a tc program once on `packet` (an Ethernet frame; the kernel builds the skb as if it
 * arrived on the loopback device) and copies the packet as the program left it into `out`.
 */
export function testRun(progFd: number, packet: Uint8Array, out: Uint8Array): TestRun {
  const attr = new Uint8Array(ATTR_LEN);
  const v = new DataView(attr.buffer);
  v.setUint32(0, progFd, true);
  v.setUint32(8, packet.length, true);
  v.setUint32(12, out.length, true);
  v.setUint32(32, 1, true); // repeat
  call(BPF_PROG_TEST_RUN, attr, [16, packet, 24, out], 'bpf(BPF_PROG_TEST_RUN)');
  return { retval: v.getInt32(4, true), size: v.getUint32(12, true) };
}

/** Closes a map, program or link fd; a second close of the same number is the caller's bug. */
export function closeBpf(fd: number): void {
  if (fd >= 0) native.close(fd);
}

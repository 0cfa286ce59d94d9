/**
 * systemd's notify protocol (sd_notify(3)): datagrams like `READY=1`, `STATUS=...`, `WATCHDOG=1`
 * to the unix socket named by $NOTIFY_SOCKET. Node cannot send on a unix datagram socket, so the
 * native addon's socket/sendto do it; sent from the main process, so `NotifyAccess=main` suffices.
 * Without $NOTIFY_SOCKET every call is a no-op.
 */
import { K, native } from '../sys/addon.js';

const AF_UNIX = 1;
const SUN_PATH_MAX = 108;

/** A packed `struct sockaddr_un` for `path` (`@name` is the abstract namespace). */
export function sockaddrUn(path: string): Uint8Array {
  const abstract = path.startsWith('@');
  const name = Buffer.from(abstract ? path.slice(1) : path);
  if (name.length + 1 > SUN_PATH_MAX) throw new RangeError(`unix socket path too long: ${path}`);
  // Abstract names are length-delimited; filesystem paths are NUL-terminated.
  const b = new Uint8Array(2 + (abstract ? 1 + name.length : name.length + 1));
  new DataView(b.buffer).setUint16(0, AF_UNIX, true);
  b.set(name, abstract ? 3 : 2);
  return b;
}

export class SdNotify {
  readonly #addr: Uint8Array | undefined;
  #fd = -1;
  #watchdog: ReturnType<typeof setInterval> | undefined;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    const p = env.NOTIFY_SOCKET;
    this.#addr = p && (p.startsWith('/') || p.startsWith('@')) ? sockaddrUn(p) : undefined;
    const usec = Number(env.WATCHDOG_USEC);
    const pid = env.WATCHDOG_PID === undefined ? process.pid : Number(env.WATCHDOG_PID);
    if (this.#addr && Number.isFinite(usec) && usec > 0 && pid === process.pid) {
      // Half the interval, as sd_watchdog_enabled(3) advises; only a live event loop sends it.
      this.#watchdog = setInterval(() => this.send('WATCHDOG=1'), Math.max(1, Math.floor(usec / 2000)));
      this.#watchdog.unref();
    }
  }

  get enabled(): boolean {
    return this.#addr !== undefined;
  }

  /** Sends `state` (newline-separated assignments). Returns false when not under systemd or on error. */
  send(state: string): boolean {
    if (!this.#addr) return false;
    if (this.#fd < 0) {
      this.#fd = native.socket(AF_UNIX, K.SOCK_DGRAM, 0);
      if (this.#fd < 0) return false;
    }
    return native.sendto(this.#fd, Buffer.from(state), this.#addr) >= 0;
  }

  /** READY=1, with a STATUS= line when given. */
  ready(status?: string): void {
    this.send(status === undefined ? 'READY=1' : `READY=1\nSTATUS=${status}`);
  }

  /**
   * A reload begins: systemd shows the unit as "reloading" until the next READY=1 (sd_notify(3)).
   * MONOTONIC_USEC (CLOCK_MONOTONIC, which process.hrtime reads) lets systemd 253 and later tell
   * this reload from an earlier one.
   */
  reloading(): void {
    this.send(`RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`);
  }

  /** Runs `reload` between RELOADING=1 and READY=1, whether it succeeds or throws. */
  aroundReload(reload: () => void): void {
    this.reloading();
    try {
      reload();
    } finally {
      this.ready();
    }
  }

  status(status: string): void {
    this.send(`STATUS=${status}`);
  }

  stopping(): void {
    this.send('STOPPING=1');
  }

  close(): void {
    if (this.#watchdog) clearInterval(this.#watchdog);
    if (this.#fd >= 0) native.close(this.#fd);
    this.#fd = -1;
  }
}

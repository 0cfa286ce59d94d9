/**
 * The control socket: a unix stream socket (/run/clatd/<uplink>.sock by default) speaking one JSON
 * object per line. Request `{"cmd":"status"}`, answer `{"ok":true,"status":{...}}`; an unknown
 * command gets `{"ok":false,"error":"..."}`. `clatd status` is the client. One request per
 * connection; each client has a deadline for the whole exchange and only a few are served at once,
 * so no client, however slow, can hold the daemon's fds.
 */
import { chmodSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { ClatdError } from '../core/errors.js';
import { CONTROL_DIR } from './config.js';

export class ControlError extends ClatdError {
  constructor(message: string) {
    super(message, 'ERR_CLATD_CONTROL');
    this.name = 'ControlError';
  }
}

export type Handler = (req: { cmd: string }) => unknown;

const MAX_REQUEST = 4096;

/**
 * How long one client may take, from its connection to its answer written, whatever it sends. An
 * inactivity timeout is not enough: a client sending one byte every 3 s never went idle for 5 s
 * and held its fd for ever. `clatd status` needs a few ms; its own timeout is 2 s as well.
 */
export const REQUEST_DEADLINE_MS = 2000;
/**
 * Clients served at once. Each holds an fd; 20,000 slow clients once used up the fd limit, and
 * then `nft` and the TUN could not be opened. An operator or a monitor runs a few `clatd status`
 * at a time, each done in milliseconds: 16 is plenty for them and a negligible share of fds.
 */
export const MAX_CLIENTS = 16;
/**
 * With all slots taken, a new client takes the slot of the oldest one if that one has had this
 * long without being done (a local request takes ~1 ms), so slow or idle clients cannot lock
 * `clatd status` out; within a burst of fresh connections the newcomer is refused instead, so a
 * burst does not close clients that are still being served.
 */
export const EVICT_AFTER_MS = 250;

export interface ControlLimits {
  readonly deadlineMs: number;
  readonly maxClients: number;
  readonly evictAfterMs: number;
}

/** What the control socket did with its clients since it started (for status). */
export interface ControlCounters {
  /** Connections accepted (including those then refused). */
  accepted: number;
  /** Requests answered. */
  answered: number;
  /** Connections closed at once: {@link MAX_CLIENTS} were open, none older than the eviction age. */
  refused: number;
  /** Clients closed to give their slot to a new one. */
  evicted: number;
  /** Clients closed at the request deadline. */
  timedOut: number;
  /** Clients connected now. */
  open: number;
}

const errorLine = (error: string) => `${JSON.stringify({ ok: false, error })}\n`;

/** Asks the socket at `path`; resolves with the parsed answer. */
export function request(path: string, cmd: string, timeoutMs = 2000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const s: Socket = createConnection(path);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new ControlError(`no answer from ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('connect', () => s.write(`${JSON.stringify({ cmd })}\n`));
    s.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      s.end();
      try {
        resolve(JSON.parse(buf.slice(0, nl)));
      } catch {
        reject(new ControlError(`bad answer from ${path}`));
      }
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why =
        e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
          ? 'no clatd is running there'
          : e.code === 'EACCES'
            ? 'permission denied (run as root)'
            : e.message;
      reject(new ControlError(`cannot reach the control socket ${path}: ${why}`));
    });
  });
}

/** True when a live daemon answers at `path`. */
export async function isLive(path: string): Promise<boolean> {
  try {
    await request(path, 'ping', 1000);
    return true;
  } catch {
    return false;
  }
}

/** The control sockets under /run/clatd (one per running daemon). */
export function listSockets(dir = CONTROL_DIR): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.sock'))
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}

export class ControlServer {
  #server?: Server;
  readonly #limits: ControlLimits;
  /** Open clients by the time they connected; a Map keeps insertion order, so the first is the oldest. */
  readonly #clients = new Map<Socket, number>();
  readonly #counts = { accepted: 0, answered: 0, refused: 0, evicted: 0, timedOut: 0 };

  constructor(
    readonly path: string,
    private readonly handler: Handler,
    limits: Partial<ControlLimits> = {},
  ) {
    this.#limits = {
      deadlineMs: limits.deadlineMs ?? REQUEST_DEADLINE_MS,
      maxClients: limits.maxClients ?? MAX_CLIENTS,
      evictAfterMs: limits.evictAfterMs ?? EVICT_AFTER_MS,
    };
  }

  /** A copy of the counters. */
  get counters(): ControlCounters {
    return { ...this.#counts, open: this.#clients.size };
  }

  /** Listens; a stale socket file (nobody answering) is replaced, a live one is an error. */
  async listen(): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o755 });
    if (await isLive(this.path)) {
      throw new ControlError(`another clatd is running: its control socket ${this.path} answers`);
    }
    try {
      unlinkSync(this.path);
    } catch {
      // Not there: fine.
    }
    const server = createServer((s) => this.#accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new ControlError(`control socket ${this.path}: ${e.message}`)));
      server.listen(this.path, () => resolve());
    });
    chmodSync(this.path, 0o660);
    server.unref();
    this.#server = server;
  }

  #accept(s: Socket): void {
    this.#counts.accepted++;
    s.on('error', () => s.destroy());
    if (this.#clients.size >= this.#limits.maxClients) {
      const now = Date.now();
      const [oldest, since] = this.#clients.entries().next().value as [Socket, number];
      if (now - since < this.#limits.evictAfterMs) {
        this.#counts.refused++;
        closeWith(s, errorLine(`busy: ${this.#limits.maxClients} control clients are connected; try again`));
        return;
      }
      this.#counts.evicted++;
      this.#clients.delete(oldest);
      closeWith(oldest, errorLine('closed: too slow while another client was waiting'));
    }
    this.#serve(s);
  }

  #serve(s: Socket): void {
    this.#clients.set(s, Date.now());
    let buf = '';
    let answered = false;
    // Covers the whole request and the answer: a client that does not read its answer is closed too.
    const deadline = setTimeout(() => {
      this.#counts.timedOut++;
      this.#clients.delete(s);
      closeWith(s, answered ? '' : errorLine(`no whole request within ${this.#limits.deadlineMs} ms`));
    }, this.#limits.deadlineMs);
    s.on('close', () => {
      clearTimeout(deadline);
      this.#clients.delete(s);
    });
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      if (answered) return; // one request per connection; the rest is ignored
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0 && buf.length <= MAX_REQUEST) return;
      answered = true;
      let answer: unknown;
      if (nl < 0 || nl > MAX_REQUEST) answer = { ok: false, error: 'request too long' };
      else {
        try {
          const req = JSON.parse(buf.slice(0, nl)) as { cmd?: unknown };
          if (typeof req.cmd !== 'string') throw new Error('missing "cmd"');
          answer = req.cmd === 'ping' ? { ok: true } : this.handler({ cmd: req.cmd });
        } catch (e) {
          answer = { ok: false, error: (e as Error).message };
        }
      }
      buf = '';
      this.#counts.answered++;
      // Closed once the answer is with the kernel, not when the client gets round to closing.
      s.end(`${JSON.stringify(answer)}\n`, () => s.destroy());
    });
  }

  close(): void {
    this.#server?.close();
    this.#server = undefined;
    for (const s of this.#clients.keys()) s.destroy();
    this.#clients.clear();
    try {
      unlinkSync(this.path);
    } catch {
      // Already gone.
    }
  }
}

/**
 * Sends a short line if the socket takes it now, then closes at once: the fd is given back
 * without waiting for the client. A small write to a socket with room goes to the kernel
 * synchronously, and a unix socket's peer can still read what was queued before the close.
 */
function closeWith(s: Socket, line: string): void {
  if (line && s.writable) s.write(line);
  s.destroy();
}

/**
 * The control socket: a unix stream socket (/run/clatd/<uplink>.sock by default) speaking one JSON
 * object per line. Request `{"cmd":"status"}`, answer `{"ok":true,"status":{...}}`; an unknown
 * command gets `{"ok":false,"error":"..."}`. `clatd status` is the client.
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
/** A client that sends no whole request within this is disconnected (its fd is not held forever). */
const IDLE_MS = 5000;

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
  constructor(
    readonly path: string,
    private readonly handler: Handler,
    private readonly idleMs = IDLE_MS,
  ) {}

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
    const server = createServer((s) => this.#serve(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new ControlError(`control socket ${this.path}: ${e.message}`)));
      server.listen(this.path, () => resolve());
    });
    chmodSync(this.path, 0o660);
    server.unref();
    this.#server = server;
  }

  #serve(s: Socket): void {
    let buf = '';
    s.setEncoding('utf8');
    s.on('error', () => s.destroy());
    s.setTimeout(this.idleMs, () => s.destroy());
    s.on('data', (d: string) => {
      buf += d;
      if (buf.length > MAX_REQUEST) {
        s.end(`${JSON.stringify({ ok: false, error: 'request too long' })}\n`);
        return;
      }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let answer: unknown;
      try {
        const req = JSON.parse(buf.slice(0, nl)) as { cmd?: unknown };
        if (typeof req.cmd !== 'string') throw new Error('missing "cmd"');
        answer = req.cmd === 'ping' ? { ok: true } : this.handler({ cmd: req.cmd });
      } catch (e) {
        answer = { ok: false, error: (e as Error).message };
      }
      s.end(`${JSON.stringify(answer)}\n`);
    });
  }

  close(): void {
    this.#server?.close();
    this.#server = undefined;
    try {
      unlinkSync(this.path);
    } catch {
      // Already gone.
    }
  }
}

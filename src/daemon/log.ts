/**
 * One line per event, as text (`2026-11-26T09:00:00.000Z info  uplink: eth0 from the IPv6 default
 * route ifindex=2`) or JSON (`{"ts":…,"level":"info","event":"uplink","msg":…,"ifindex":2}`). The
 * event name is a stable word that scripts can match; the message is for people.
 */
import { fstatSync } from 'node:fs';
import type { LogFormat, LogLevel } from './config.js';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
/** syslog(3) priorities, which journald reads from a `<N>` line prefix (sd-daemon(3)). */
const PRIORITY: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };

/**
 * Whether stderr is connected to the systemd journal: systemd sets JOURNAL_STREAM to the
 * `device:inode` of the stream it connects (systemd.exec(5)), so a stderr redirected elsewhere by
 * the service does not match.
 */
export function stderrIsJournal(
  env: NodeJS.ProcessEnv = process.env,
  stat: () => { dev: number; ino: number } = () => fstatSync(2),
): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const s = stat();
    return s.dev === Number(m[1]) && s.ino === Number(m[2]);
  } catch {
    return false;
  }
}

export type Fields = Record<string, string | number | boolean | undefined | null>;

let stderrBroken = false;
let stderrWatched = false;

/**
 * Writes to stderr until it breaks. When whoever reads the log goes away (`clatd run | head`, a
 * closed terminal), a write fails with EPIPE and the stream emits 'error': unhandled, that error
 * went to the daemon's crash handler, whose own log line failed the same way, over and over,
 * starving the event loop — the stop never ran and the TUN, routes and nftables table stayed. A
 * daemon goes on, and stops cleanly, without its log.
 */
function writeStderr(line: string): void {
  if (!stderrWatched) {
    stderrWatched = true;
    process.stderr.on('error', () => {
      stderrBroken = true;
    });
  }
  if (!stderrBroken) process.stderr.write(line);
}

export class Logger {
  level: LogLevel;
  format: LogFormat;
  readonly #write: (line: string) => void;
  readonly #now: () => Date;

  /**
   * Text lines for the journal: a `<N>` priority prefix (so `journalctl -p warning` works) and no
   * timestamp of our own (the journal keeps one per line).
   */
  readonly journal: boolean;

  constructor(
    opts: {
      level?: LogLevel;
      format?: LogFormat;
      journal?: boolean;
      write?: (line: string) => void;
      now?: () => Date;
    } = {},
  ) {
    this.level = opts.level ?? 'info';
    this.format = opts.format ?? 'text';
    this.journal = opts.journal ?? false;
    this.#write = opts.write ?? writeStderr;
    this.#now = opts.now ?? (() => new Date());
  }

  enabled(level: LogLevel): boolean {
    return RANK[level] >= RANK[this.level];
  }

  debug(event: string, msg: string, fields?: Fields): void {
    this.log('debug', event, msg, fields);
  }
  info(event: string, msg: string, fields?: Fields): void {
    this.log('info', event, msg, fields);
  }
  warn(event: string, msg: string, fields?: Fields): void {
    this.log('warn', event, msg, fields);
  }
  error(event: string, msg: string, fields?: Fields): void {
    this.log('error', event, msg, fields);
  }

  log(level: LogLevel, event: string, msg: string, fields: Fields = {}): void {
    if (!this.enabled(level)) return;
    const ts = this.#now().toISOString();
    // Newlines would split one event over several lines; a message never needs them.
    const clean = msg.replace(/[\r\n]+/g, ' ');
    if (this.format === 'json') {
      const obj: Record<string, unknown> = { ts, level, event, msg: clean };
      for (const [k, v] of Object.entries(fields)) if (v !== undefined) obj[k] = v;
      this.#write(`${JSON.stringify(obj)}\n`);
      return;
    }
    let line = this.journal
      ? `<${PRIORITY[level]}>${level.padEnd(5)} ${event}: ${clean}`
      : `${ts} ${level.padEnd(5)} ${event}: ${clean}`;
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      const s = String(v);
      line += ` ${k}=${/[\s"=]/.test(s) || s === '' ? JSON.stringify(s) : s}`;
    }
    this.#write(`${line}\n`);
  }
}

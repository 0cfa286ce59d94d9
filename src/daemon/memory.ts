/**
 * The daemon's memory for `clatd status` and the metrics: the process's resident set and threads
 * from /proc/self/status, the main thread's V8 heap, and how many datapath worker threads run.
 */
import { readFileSync } from 'node:fs';
import { workerThreads } from '../datapath/datapath.js';
import { releaseFilePages } from '../sys/file-pages.js';
import type { Logger } from './log.js';
import type { MemoryStatus } from './status.js';

/** A `Name:   123 kB` field of /proc/self/status in bytes (or a plain count), NaN when absent. */
function field(text: string, name: string, kb: boolean): number {
  const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) * (kb ? 1024 : 1) : Number.NaN;
}

export function memoryStatus(): MemoryStatus {
  const mem = process.memoryUsage();
  let text = '';
  try {
    text = readFileSync('/proc/self/status', 'utf8');
  } catch {
    // No /proc: the resident set from Node, the rest unknown.
  }
  return {
    rssBytes: text ? field(text, 'VmRSS', true) : mem.rss,
    anonBytes: field(text, 'RssAnon', true),
    heapUsedBytes: mem.heapUsed,
    heapTotalBytes: mem.heapTotal,
    externalBytes: mem.external,
    threads: field(text, 'Threads', false),
    workerThreads: workerThreads(),
  };
}

/**
 * How long after a start (the daemon's first `running`, workers that started on input) the file
 * pages it touched are let go: the start's last steps (the first translations, the kernel
 * programs' attach, the first status) are over by then.
 */
export const RELEASE_AFTER_START_MS = 3000;

/** The same after workers started on input: they serve that input first and warm up after (seconds). */
export const RELEASE_AFTER_WORKERS_MS = 15_000;

/** Lets go of the file pages touched so far (src/sys/file-pages.ts says why), and says so. */
export function releaseStartPages(log: Logger, after: string): void {
  const r = releaseFilePages();
  if (r.mappings > 0)
    log.info(
      'memory',
      `after ${after}: let go of ${(r.bytes / 1048576).toFixed(1)} MiB of file pages (${r.mappings} mappings)`,
    );
}

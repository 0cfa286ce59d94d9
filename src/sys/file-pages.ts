/**
 * Letting go of the file pages start-up touched. A process's resident set counts every page of a
 * mapped file it has touched since it started: for a Node.js daemon, the parts of the node binary
 * (V8's parser, compilers, builtins, ICU data), of the C libraries and of the addon that loading
 * modules, parsing the configuration and warming the datapath up went through, about 40 MB of the
 * daemon's idle 55 MB, of which an idle daemon uses well under half again (bench/README.md,
 * "Memory"). They are clean page-cache pages, shared with every other process of the same files;
 * MADV_DONTNEED on a read-only mapping takes them out of this process's page tables, and a page
 * used again comes back from the page cache on its first touch (a minor fault, no I/O while the
 * file stays cached).
 *
 * Only mappings that cannot hold data of their own are touched: backed by a file, not writable,
 * and without a private copy of any page (`Anonymous` and `Swap` 0 kB in /proc/self/smaps; a relocated
 * RELRO page, or a breakpoint a debugger wrote, is one), neither locked nor huge-TLB. For those,
 * MADV_DONTNEED can only drop what reads back the same.
 */
import { readFileSync } from 'node:fs';
import { K, native } from './addon.js';

export interface FileMapping {
  start: bigint;
  end: bigint;
  /** What it holds resident now, in bytes. */
  rssBytes: number;
  path: string;
}

const HEADER = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) [0-9a-f]+ \S+ (\d+)\s+(.*)$/;

/** The mappings of an smaps text (/proc/PID/smaps) whose resident pages may be let go, as above. */
export function releasableMappings(smaps: string): FileMapping[] {
  const out: FileMapping[] = [];
  let cur: (FileMapping & { ok: boolean }) | undefined;
  const finish = () => {
    if (cur?.ok && cur.rssBytes > 0)
      out.push({ start: cur.start, end: cur.end, rssBytes: cur.rssBytes, path: cur.path });
  };
  for (const line of smaps.split('\n')) {
    const h = HEADER.exec(line);
    if (h) {
      finish();
      const [, start, end, perms, inode, path] = h as unknown as [string, string, string, string, string, string];
      cur = {
        start: BigInt(`0x${start}`),
        end: BigInt(`0x${end}`),
        rssBytes: 0,
        path,
        ok: inode !== '0' && path.startsWith('/') && perms[1] !== 'w' && perms[3] === 'p',
      };
      continue;
    }
    if (cur === undefined) continue;
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (key === 'Rss') cur.rssBytes = Number.parseInt(value, 10) * 1024;
    else if (key === 'Anonymous' || key === 'Swap' || key === 'Locked') {
      if (Number.parseInt(value, 10) !== 0) cur.ok = false;
    } else if (key === 'VmFlags') {
      const flags = value.split(/\s+/);
      // Locked, huge-TLB, or I/O memory: not plain file pages.
      if (flags.some((f) => f === 'lo' || f === 'ht' || f === 'io' || f === 'pf')) cur.ok = false;
    }
  }
  finish();
  return out;
}

/**
 * Lets go of this process's resident pages of the mappings {@link releasableMappings} finds.
 * Returns what they held (bytes) and the mappings released; a mapping the kernel refuses is
 * skipped (its pages stay, nothing else changes).
 */
export function releaseFilePages(): { bytes: number; mappings: number } {
  let smaps: string;
  try {
    smaps = readFileSync('/proc/self/smaps', 'utf8');
  } catch {
    return { bytes: 0, mappings: 0 }; // no /proc: nothing known, nothing touched
  }
  let bytes = 0;
  let mappings = 0;
  for (const m of releasableMappings(smaps)) {
    if (native.madvise(m.start, m.end - m.start, K.MADV_DONTNEED) === 0) {
      bytes += m.rssBytes;
      mappings++;
    }
  }
  return { bytes, mappings };
}

/**
 * glibc's malloc tuning for a daemon that replaces its worker threads.
 *
 * glibc serves a large allocation (≥ M_MMAP_THRESHOLD, 128 KiB at start) with its own mmap and
 * gives it back on free, but raises the threshold to the size of each such block freed (up to
 * 32 MiB). Node allocates the workers' batch arenas and V8's off-heap buffers with malloc, so after
 * the first datapath restart the next arenas come from the heaps of the thread arenas instead, where
 * freed memory is kept: measured with `bench/restarts-rss.ts`, RSS grew from 90 to 155 MB over five
 * datapath restarts, and stayed near 90 MB with the threshold fixed. Setting it explicitly turns the
 * dynamic adjustment off (mallopt(3)).
 */
import { K, native } from './addon.js';

export const MMAP_THRESHOLD = 128 * 1024;

/** Fixes glibc's mmap threshold at 128 KiB; false where the C library refused (not glibc). */
export function fixMmapThreshold(): boolean {
  return native.mallopt(K.M_MMAP_THRESHOLD, MMAP_THRESHOLD) === 1;
}

/**
 * Node.js flags the daemon runs with. The `clatd` bin passes them in its shebang line
 * (src/cli/main.ts; a test keeps the two equal), and whatever starts `clatd run` through
 * `node .../main.js` (the lab, the benchmark) passes them itself; hence this file sits below
 * src/cli, where the lab can reach it.
 *
 * `--use-largepages=silent`: Node copies its own code (V8's builtins included, ~24 MB) onto 2 MB
 * pages when the kernel allows transparent huge pages, and quietly does nothing otherwise. After an
 * idle gap every packet runs through code that has fallen out of the TLB and the caches; with
 * 2 MB pages far fewer page-table entries are needed to bring it back. Measured in the benchmark
 * lab (bench/README.md), ping every 2 s: 1.14 → 0.60 ms (mean of three runs). Costs ~140 ms at
 * start and ~8 MB of RSS (benchmark, after 60 s of UDP flood: 83.9 → 91.6 MB).
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--use-largepages=silent'];

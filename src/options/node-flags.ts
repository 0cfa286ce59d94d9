/**
 * Node.js flags the daemon runs with. The `clatd` bin passes them in its shebang line
 * (src/cli/main.ts; a test keeps the two equal), and whatever starts `clatd run` through
 * `node .../main.js` (the lab, the benchmark) passes them itself; hence this file sits below
 * src/cli, where the lab can reach it. A .deb's shebang can carry one flag at most.
 *
 * None at present. `--use-largepages=silent` was here: Node copies its code (~24 MB, V8's
 * builtins included) onto 2 MB pages, which cut the worker path's ping after idle gaps of
 * seconds from 1.14 to 0.60 ms. But the copy is anonymous memory, held for the life of the
 * process and never given back, where the file pages it replaces are let go once the daemon
 * runs (src/sys/file-pages.ts): idle RSS 27 → 46 MB with the kernel fast path, which carries
 * pings without waking user space at all (bench/README.md, "Memory"). Measured and not kept
 * either: --single-threaded-gc, --max-semi-space-size, --v8-pool-size (within the noise).
 */
export const DAEMON_NODE_FLAGS: readonly string[] = [];

/**
 * `clatd run` (the default command): checks privileges and tools, opens the control socket, starts
 * the daemon over the real system layer, and wires signals (TERM/INT stop, HUP reloads --config),
 * systemd notification and the metrics server around it.
 */
import {
  accessSync,
  closeSync,
  existsSync,
  fchownSync,
  constants as fsc,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
} from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { CONTROL_DIR, defaultControlPath, loadConfig, type RawValues, RUN_SPEC } from '../daemon/config.js';
import { ControlServer } from '../daemon/control.js';
import { Daemon } from '../daemon/daemon.js';
import { Logger, stderrIsJournal } from '../daemon/log.js';
import { MetricsServer } from '../daemon/metrics.js';
import { SdNotify } from '../daemon/notify.js';
import { checkPreflight, PreflightError, probeTun, tunDenied } from '../daemon/preflight.js';
import type { StatusSnapshot } from '../daemon/status.js';
import { parseCommand, UsageError } from '../options/args.js';
import { RESERVED_FDS, reserveFds } from '../sys/fd-reserve.js';

/** How long a stop may take before the process exits anyway (the issue asks for 2 s). */
const EXIT_DEADLINE_MS = 1800;

/**
 * Gives `path` to the account, as root. Through an fd opened without following a symlink, and only
 * a directory or a plain file with one link: the folder may already belong to the user (an earlier
 * --user run), who could have put a symlink or a hard link to a root file (/etc/shadow) where a
 * record is expected, for this root process to hand over.
 */
export function giveTo(path: string, account: { uid: number; gid: number }, dir: boolean): void {
  const fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | (dir ? fsc.O_DIRECTORY : 0));
  try {
    const st = fstatSync(fd);
    if (dir ? st.isDirectory() : st.isFile() && st.nlink === 1) fchownSync(fd, account.uid, account.gid);
  } finally {
    closeSync(fd);
  }
}

/**
 * `--user`: switches to the user, keeping CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF (src/sys/privileges.ts).
 * Done here, before the control socket, the metrics server and the daemon (so before any datapath
 * worker starts, which must inherit the capabilities), and after what needs root: the user
 * database, and the control socket's folder, which also holds the host-settings record and so
 * must stay writable for the user. A folder clatd creates, or its own /run/clatd, is given to the
 * user (as systemd's RuntimeDirectory= with User= does); any other must already be writable for
 * it. Checked after the switch, with /dev/net/tun, so that a run that could not rebuild its TUN
 * fails at once, in one sentence, and not later in a retry loop.
 */
async function becomeUser(
  spec: string,
  controlDir: string,
  configFile: string | undefined,
  log: Logger,
): Promise<void> {
  const { dropPrivileges, resolveUser } = await import('../sys/privileges.js');
  const account = resolveUser(spec);
  if (!existsSync(controlDir) || controlDir === CONTROL_DIR) {
    mkdirSync(controlDir, { recursive: true, mode: 0o755 });
    giveTo(controlDir, account, true);
    // A record of host settings left by a run as root (mode 0600) would be unreadable after the
    // switch, and the host's own values in it lost: the user takes those over with the folder.
    for (const f of readdirSync(controlDir)) {
      if (!f.endsWith('.host-settings.json')) continue;
      try {
        giveTo(join(controlDir, f), account, false);
      } catch {
        // A symlink (ELOOP) or vanished: not a record this run can use; left as it is.
      }
    }
  }
  const kept = dropPrivileges(account);
  const who = `user ${account.name} (uid ${account.uid})`;
  try {
    accessSync(controlDir, fsc.W_OK | fsc.X_OK);
  } catch (e) {
    throw new PreflightError(
      `the control socket's folder ${controlDir} is not writable for ${who} (${(e as NodeJS.ErrnoException).code}): ` +
        `give it to that user, or use --control in a folder it owns`,
    );
  }
  const denied = tunDenied(probeTun(), who);
  if (denied) throw denied;
  if (configFile !== undefined) {
    try {
      accessSync(configFile, fsc.R_OK);
    } catch (e) {
      // Not fatal: this run has read it; only a SIGHUP would need it again.
      log.warn(
        'privileges',
        `--config ${configFile} is not readable for ${who} (${(e as NodeJS.ErrnoException).code}): a SIGHUP cannot re-read it`,
      );
    }
  }
  log.info('privileges', `running as ${who}, gid ${account.gid}, with ${kept.join(', ')} only`);
}

export async function main(argv: string[]): Promise<number> {
  const parsed = parseCommand(RUN_SPEC, argv);
  if (!parsed) return 0;
  const flags: RawValues = parsed.values;
  const cfg = loadConfig(flags);
  const log = new Logger({ level: cfg.logLevel, format: cfg.logFormat, journal: stderrIsJournal() });
  checkPreflight();
  // Spare fds for clean-up: with every other fd in use, `nft` and the /proc/sys writes of the
  // teardown still run (fd-reserve.ts).
  const spare = reserveFds();
  if (spare < RESERVED_FDS) log.warn('start', `only ${spare} of ${RESERVED_FDS} spare fds reserved for clean-up`);

  // The system layer loads the native addon; import it only now, so --help and bad flags never need it.
  const { openRtnl, SystemLan, SystemNet, systemDeps } = await import('../daemon/system/index.js');
  const { datapathFactory } = await import('../daemon/datapath.js');
  const { fixMmapThreshold } = await import('../sys/malloc.js');
  // Memory freed by replaced workers goes back to the system (sys/malloc.ts says why).
  if (!fixMmapThreshold()) log.debug('start', 'mallopt(M_MMAP_THRESHOLD) refused: RSS may grow with datapath restarts');
  const { memoryStatus, RELEASE_AFTER_START_MS, releaseStartPages } = await import('../daemon/memory.js');
  const rtnl = openRtnl();
  const workers = cfg.workers ?? availableParallelism();
  const startTimeSec = Date.now() / 1000;

  let uplinkGuess = cfg.interface;
  if (uplinkGuess === undefined) {
    const net = new SystemNet(rtnl);
    const r = await net.defaultRoute6();
    uplinkGuess = r && (await net.links()).find((l) => l.index === r.ifindex)?.name;
  }
  const controlPath = cfg.control ?? defaultControlPath(uplinkGuess ?? 'default');
  if (cfg.user !== undefined) {
    try {
      await becomeUser(cfg.user, dirname(controlPath), cfg.configFile, log);
    } catch (e) {
      rtnl.close();
      throw e;
    }
  }
  // Host settings clatd changes are recorded beside the control socket (under /run by default).
  const deps = systemDeps(rtnl, datapathFactory(workers, log, cfg.offload, rtnl), workers, dirname(controlPath));
  // Router mode: --lan needs --interface (config.ts), so its table and record belong to that uplink.
  if (cfg.lan.length > 0 && cfg.interface !== undefined) deps.lan = new SystemLan(cfg.interface, dirname(controlPath));
  const daemon = new Daemon(cfg, deps, log);
  const snapshot = (): StatusSnapshot => ({ ...daemon.status(), control: control.counters, memory: memoryStatus() });
  const control = new ControlServer(controlPath, (req) => {
    if (req.cmd === 'status') return { ok: true, status: snapshot() };
    throw new Error(`unknown command "${req.cmd}" (known: status, ping)`);
  });
  try {
    await control.listen();
  } catch (e) {
    rtnl.close();
    throw e;
  }
  log.info('control', `control socket ${controlPath}`);

  let metrics: MetricsServer | undefined;
  if (cfg.metrics) {
    metrics = new MetricsServer(cfg.metrics.host, cfg.metrics.port, snapshot, startTimeSec);
    try {
      await metrics.listen();
      log.info('metrics', `Prometheus metrics on http://${cfg.metrics.host}:${cfg.metrics.port}/metrics`);
    } catch (e) {
      control.close();
      rtnl.close();
      throw new UsageError(`clatd run: ${(e as Error).message}`);
    }
  }

  // READY=1 once the daemon manages the host (control socket up, leftovers cleared, first step
  // started), not once it translates: waiting for an uplink or a NAT64 prefix, or idling beside
  // native IPv4, is a normal state of a ready service, shown in STATUS=. Waiting for translation
  // would hold `systemctl start` (and boot ordering) hostage to the network and fail the unit at
  // TimeoutStartSec on a host that simply has native IPv4. systemd/clatd@.service says the same.
  const notify = new SdNotify();
  // Once translation first runs, the file pages start-up touched are let go (src/daemon/memory.ts).
  let released = false;
  daemon.onStatus = (line) => {
    notify.status(line);
    if (released || daemon.state !== 'running') return;
    released = true;
    setTimeout(() => releaseStartPages(log, 'start-up'), RELEASE_AFTER_START_MS).unref();
  };

  const onStop = (sig: string) => () => {
    log.info('signal', `${sig}: stopping`);
    notify.stopping();
    // A second signal while stopping forces the exit.
    setTimeout(() => process.exit(daemon.state === 'stopped' ? 0 : 1), EXIT_DEADLINE_MS).unref();
    void daemon.stop(sig);
  };
  // RELOADING=1 ... READY=1 around it, so that `systemctl reload` shows the unit reloading.
  const onHup = () =>
    notify.aroundReload(() => {
      if (!cfg.configFile) {
        log.info('reload', 'SIGHUP: no --config file to re-read');
        return;
      }
      try {
        daemon.reload(loadConfig(flags));
      } catch (e) {
        log.error('reload', `${(e as Error).message}; keeping the running configuration`);
      }
    });
  const handlers: [NodeJS.Signals, () => void][] = [
    ['SIGTERM', onStop('SIGTERM')],
    ['SIGINT', onStop('SIGINT')],
    ['SIGHUP', onHup],
  ];
  for (const [sig, fn] of handlers) process.on(sig, fn);
  // A bug must not leave the host with a dead TUN and its default route: take everything down first.
  // Only the first error stops the daemon; one that recurs while it stops must not start it over.
  let crashed = false;
  const onCrash = (e: unknown) => {
    log.error('internal', `internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    if (crashed) return;
    crashed = true;
    setTimeout(() => process.exit(70), EXIT_DEADLINE_MS).unref();
    void daemon.stop('internal error', 70);
  };
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);

  log.info('start', `clatd ${process.pid} starting`, { config: cfg.configFile, mode: cfg.mode, dad: cfg.dad });
  await daemon.start();
  notify.ready(`${daemon.state}: started`);
  const code = await daemon.done;
  for (const [sig, fn] of handlers) process.off(sig, fn);
  process.off('uncaughtException', onCrash);
  process.off('unhandledRejection', onCrash);
  metrics?.close();
  control.close();
  notify.close();
  rtnl.close();
  log.info('exit', `clatd ${process.pid} exiting with status ${code}`);
  // Whatever might still hold the event loop (a stuck worker), the process leaves now.
  setTimeout(() => process.exit(code), 200).unref();
  return code;
}

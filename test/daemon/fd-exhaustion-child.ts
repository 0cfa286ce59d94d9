/**
 * Child process for fd-exhaustion.test.ts, run in a test namespace under `prlimit --nofile=64:64`:
 * builds the uplink side on eth0 (raw socket with the anycast address, clatd's nft table,
 * proxy_delay 0), then uses up every other fd, as slow control clients once did, and takes the
 * side down. Prints one JSON line. Does nothing unless started with `--run` (the test runner also
 * loads this file).
 *
 *   --run reserve DIR   spare fds reserved at start, as `clatd run` does
 *   --run none DIR      no spare fds: shows what the teardown did before
 */
import { spawnSync } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { HostSettings } from '../../src/daemon/system/host-settings.js';
import { SystemUplink } from '../../src/daemon/system/uplink.js';
import { reservedFds, reserveFds } from '../../src/sys/fd-reserve.js';

async function run(mode: string, dir: string): Promise<void> {
  if (mode === 'reserve') reserveFds();
  const index = Number(readFileSync('/sys/class/net/eth0/ifindex', 'utf8'));
  const up = new SystemUplink(
    { index, name: 'eth0', up: true, mtu: 1500, linkType: 1 },
    '2001:db8:1::99',
    new HostSettings(dir, 'eth0'),
  );
  // Every fd the limit allows, taken.
  const filler: number[] = [];
  for (;;) {
    try {
      filler.push(openSync('/dev/null', 'r'));
    } catch {
      break;
    }
  }
  const probe = spawnSync('true');
  const exhausted = (probe.error as NodeJS.ErrnoException | undefined)?.code === 'EMFILE';
  let error: string | undefined;
  try {
    await up.close();
  } catch (e) {
    error = (e as Error).message;
  }
  process.stdout.write(`${JSON.stringify({ exhausted, filled: filler.length, reserved: reservedFds(), error })}\n`);
}

if (process.argv[2] === '--run') {
  run(process.argv[3] ?? 'reserve', process.argv[4] ?? '/tmp').catch((e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  });
}

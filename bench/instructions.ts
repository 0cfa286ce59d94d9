/**
 * Instructions per translated packet, counted by valgrind (cachegrind, no cache simulation): a
 * figure that other load on the machine does not move, for before/after comparisons of the core
 * where timings (`bench:core`) swing by ±10 % on a shared VM. Root not needed; valgrind is.
 *
 *   node dist/bench/instructions.js [DIST ...]   (default: this build's dist)
 *
 * For each build, each direction's 64-byte UDP packet is translated ROUNDS_A and ROUNDS_B batches
 * of 64 in two runs of `node --single-threaded` under valgrind; the difference of the two counts
 * over the difference of packets is the steady-state cost (start-up and JIT compilation cancel).
 * Another build (e.g. a worktree of an older commit, built with `npx tsc -p .`) is measured by
 * giving its dist folder: its own translator and packet builder are loaded.
 */
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROUNDS_A = 2000;
const ROUNDS_B = 6000;
const BATCH = 64;

/** The child: translates ROUNDS batches of one packet kind with the build at DIST. */
const CHILD = `
const [root, dir, roundsS] = process.argv.slice(1);
const { Translator } = await import(root + '/src/core/xlat/translator.js');
const { createBatch } = await import(root + '/src/core/batch.js');
const { ipv4Packet, ipv6Packet, PROTO_UDP } = await import(root + '/test/pkt/build.js');
const t = new Translator({ pool6: '64:ff9b::/96', eam: [{ v4: '192.0.0.4/32', v6: '2001:db8:1::4/128' }],
  ownV4: '192.0.0.4', ownV6: '2001:db8:1::4', hairpin: false, wkpGlobalOnly: false });
const p = dir === '46'
  ? ipv4Packet({ src: '192.0.0.4', dst: '192.0.2.1' }, { proto: PROTO_UDP, sport: 1000, dport: 53, payload: new Uint8Array(36) })
  : ipv6Packet({ src: '64:ff9b::c000:201', dst: '2001:db8:1::4' }, { proto: PROTO_UDP, sport: 53, dport: 1000, payload: new Uint8Array(16) });
const B = ${BATCH}, S = 2048;
const arena = new Uint8Array(3 * B * S);
const inb = createBatch(B, S, arena, 0);
const out = createBatch(2 * B, S, arena, B * S);
for (let i = 0; i < B; i++) { inb.offs[i] = i * S + 128; inb.lens[i] = p.length; arena.set(p, inb.offs[i]); }
let sink = 0;
for (let r = 0, n = Number(roundsS); r < n; r++) {
  out.count = 0;
  for (let i = 0; i < B; i++)
    sink += dir === '46' ? t.translate4(arena, inb.offs[i], inb.lens[i], out) : t.translate6(arena, inb.offs[i], inb.lens[i], out);
}
if (sink !== 0) throw new Error('packets dropped');
`;

/** valgrind's instruction count for one child run. */
function count(dist: string, dir: string, rounds: number): number {
  const vg = ['--tool=cachegrind', '--cache-sim=no', '--smc-check=all-non-file', '--cachegrind-out-file=/dev/null'];
  const node = [process.execPath, '--single-threaded', '--input-type=module', '-e', CHILD, dist, dir, String(rounds)];
  const r = spawnSync('valgrind', [...vg, ...node], { encoding: 'utf8' });
  const m = /I\s+refs:\s+([\d,]+)/.exec(r.stderr ?? '');
  if (r.status !== 0 || !m)
    throw new Error(`valgrind failed (${r.error?.message ?? r.status}): ${r.stderr?.slice(-500)}`);
  return Number(m[1].replaceAll(',', ''));
}

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dists = process.argv.length > 2 ? process.argv.slice(2).map((d) => resolve(d)) : [here];
process.stdout.write('build\tdir\tinstructions/packet\n');
for (const dist of dists) {
  for (const dir of ['46', '64']) {
    const a = count(dist, dir, ROUNDS_A);
    const b = count(dist, dir, ROUNDS_B);
    process.stdout.write(`${dist}\t${dir}\t${Math.round((b - a) / ((ROUNDS_B - ROUNDS_A) * BATCH))}\n`);
  }
}

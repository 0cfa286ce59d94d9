/**
 * `npm run fuzz:crash` (root): clatd killed with SIGKILL at random moments — start-up, DAD,
 * running, an uplink flap, a PREF64 change, a SIGHUP reload, shutdown — and started again, in a
 * namespace pair; after each trial the host must be exactly as before any clatd ran. Prints a
 * line per trial and a table per phase; exits 1 when a trial failed.
 *
 * Settings (environment): TRIALS=100, SEED=1 (the same seed replays the same flags, phases and
 * delays), PHASES="startup dad running flap pref64 sighup shutdown" (a subset).
 */
import { PHASES, type Phase, runCrashTrials, summary } from '../test/helpers/crash-trials.js';

const trials = Number(process.env.TRIALS ?? 100);
const seed = Number(process.env.SEED ?? 1);
const phases = (process.env.PHASES?.split(/\s+/).filter(Boolean) as Phase[] | undefined) ?? [...PHASES];
for (const p of phases) if (!PHASES.includes(p)) throw new Error(`unknown phase ${p}; one of ${PHASES.join(' ')}`);
if (process.getuid?.() !== 0) {
  console.error('fuzz:crash needs root (network namespaces)');
  process.exit(2);
}

const t0 = Date.now();
const { results, baseline } = await runCrashTrials({
  trials,
  seed,
  phases,
  random: true,
  onTrial: (r) =>
    console.log(
      `${String(r.n).padStart(4)} ${r.phase.padEnd(8)} ${r.flags.join(' ').padEnd(34)} ` +
        `kill after ${String(r.delayMs).padStart(4)} ms in ${r.killedIn.padEnd(8)} ` +
        `${r.ok ? 'ok' : 'FAIL'} ${(r.ms / 1000).toFixed(1)} s` +
        (r.recovered.length ? `  recovered: ${r.recovered.join('; ')}` : '') +
        (r.ok ? '' : `\n${r.error}`),
    ),
});
console.log(`\nsnapshot: ${baseline.join(', ')}`);
console.log(`${trials} trials, seed ${seed}, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
console.log(summary(results));
const recovered = new Map<string, number>();
for (const r of results)
  for (const w of r.recovered) {
    const k = w.replace(/\d+/g, 'N');
    recovered.set(k, (recovered.get(k) ?? 0) + 1);
  }
if (recovered.size) {
  console.log('\nremoved or given back by the next start:');
  for (const [k, v] of recovered) console.log(`  ${v} × ${k}`);
}
process.exit(results.every((r) => r.ok) ? 0 : 1);

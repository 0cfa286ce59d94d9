/**
 * RFC 7915 conformance against the 135 packet cases of Jool's SIIT test suite (GPL-2.0 data, read
 * in place from ../shared/conformance/jool-siit; never copied into this repository).
 *
 * Every case not marked `jool_specific` must pass. A `jool_specific` case either passes or is
 * listed in docs/conformance.md (a table row starting with the case name in backquotes) with the
 * RFC text that justifies clatd's different choice. The summary fails unless all 135 cases ran
 * and none failed, and when docs/conformance.md lists a deviation that no longer differs. When the
 * folder is absent (a user's clone) each of the 135 cases is skipped, saying why, so the summary
 * counts them.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fold, sum16 } from '../../src/core/checksum.js';
import type { TranslatorConfig } from '../../src/core/xlat/config.js';
import { Translator } from '../../src/core/xlat/translator.js';
import { JOOL_CASES, ROOT } from '../helpers/paths.js';

interface JoolConfig {
  pool6: string | null;
  eamt: { ipv6_prefix: string; ipv4_prefix: string }[];
  rfc6791v4_prefix: string | null;
  rfc6791v6_prefix: string | null;
  lowest_ipv6_mtu: number;
  amend_udp_checksum_zero: boolean;
  eam_hairpin_mode: string;
  reset_traffic_class: boolean;
  reset_tos: boolean;
  new_tos: number;
  ipv6_link_mtu: number;
  ipv4_link_mtu: number;
  translator_ipv6_address: string;
  translator_ipv4_address: string;
  generated_icmp_ttl: number;
  generated_icmp_hop_limit: number;
}

interface JoolCase {
  name: string;
  direction: '4to6' | '6to4';
  outcome: 'translated' | 'translated-fragments' | 'icmp-error-from-translator' | 'hairpinned';
  config: JoolConfig;
  input_hex: string;
  expected_hex: string[];
  ignore_offsets: number[];
  jool_specific: boolean;
  description: string;
}

/** Jool's configuration in clatd's terms. */
export function toTranslatorConfig(j: JoolConfig): TranslatorConfig {
  return {
    pool6: j.pool6,
    eam: j.eamt.map((e) => ({ v4: e.ipv4_prefix, v6: e.ipv6_prefix })),
    ownV4: j.translator_ipv4_address,
    ownV6: j.translator_ipv6_address,
    // An empty RFC 6791 pool falls back to the translator's own address (as Jool does).
    icmpSrcV4: j.rfc6791v4_prefix ? j.rfc6791v4_prefix.replace(/\/32$/, '') : j.translator_ipv4_address,
    lowestIpv6Mtu: j.lowest_ipv6_mtu,
    ipv4Mtu: j.ipv4_link_mtu,
    ipv6Mtu: j.ipv6_link_mtu,
    udpZeroChecksum: j.amend_udp_checksum_zero ? 'compute' : 'drop',
    trafficClass: j.reset_traffic_class ? 'zero' : 'copy',
    hairpin: j.eam_hairpin_mode !== 'off',
    // Jool does not apply RFC 6052 §3.1 to its /40 pool; the corpus uses documentation addresses.
    wkpGlobalOnly: false,
    generatedTtl: j.generated_icmp_ttl,
  };
}

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Compares one output with one expected packet; returns a description of the first difference, or null. */
function diff(got: Uint8Array, want: Uint8Array, ignore: Set<number>): string | null {
  if (got.length !== want.length) return `length ${got.length}, expected ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    if (!ignore.has(i) && got[i] !== want[i]) {
      return `byte ${i}: 0x${got[i].toString(16)}, expected 0x${want[i].toString(16)}`;
    }
  }
  // Stricter than graybox: where the IPv4 ID is ignored, the header checksum must still verify.
  if (got[0] >>> 4 === 4 && ignore.has(10)) {
    const ihl = (got[0] & 0xf) * 4;
    if (fold(sum16(got, 0, ihl)) !== 0xffff) return 'IPv4 header checksum does not verify';
  }
  return null;
}

/** Case names listed as documented deviations in docs/conformance.md. */
function documentedDeviations(): Set<string> {
  const p = join(ROOT, 'docs', 'conformance.md');
  if (!existsSync(p)) return new Set();
  const names = new Set<string>();
  for (const m of readFileSync(p, 'utf8').matchAll(/^\|\s*`([^`]+)`\s*\|/gm)) names.add(m[1]);
  return names;
}

export function runCase(c: JoolCase): string | null {
  const t = new Translator(toTranslatorConfig(c.config));
  const r = t.translate(hex(c.input_hex));
  const wantBack = c.outcome === 'icmp-error-from-translator' || c.outcome === 'hairpinned';
  const got = wantBack ? r.back : r.forward;
  const other = wantBack ? r.forward : r.back;
  if (other.length) return `unexpected ${wantBack ? 'forward' : 'back'} packet(s): ${other.map(toHex).join(' ')}`;
  if (got.length !== c.expected_hex.length) {
    return `${got.length} packet(s) out, expected ${c.expected_hex.length}${r.drop ? ` (drop: ${r.drop})` : ''}`;
  }
  const ignore = new Set(c.ignore_offsets);
  for (let i = 0; i < got.length; i++) {
    const d = diff(got[i], hex(c.expected_hex[i]), ignore);
    if (d) return `packet ${i}: ${d}\n  got      ${toHex(got[i])}\n  expected ${c.expected_hex[i]}`;
  }
  return null;
}

/** The corpus holds this many cases; every one must run (none lost to a parse or a filter). */
export const JOOL_CASE_COUNT = 135;

const present = existsSync(JOOL_CASES);
const filter = process.env.JOOL_FILTER; // e.g. "4to6" or "rfc7915/ca" while developing
const ABSENT = `needs the Jool SIIT corpus at ${JOOL_CASES} (../shared, beside the project in CI; not in a user's clone)`;

describe('Jool SIIT conformance corpus', () => {
  if (!present) {
    // One skipped test per case, so the summary counts what did not run, as it counts what does.
    for (let i = 1; i <= JOOL_CASE_COUNT; i++) test(`case ${i} of ${JOOL_CASE_COUNT}`, { skip: ABSENT }, () => {});
    test('summary: all cases ran', { skip: ABSENT }, () => {});
    return;
  }
  const all = readFileSync(JOOL_CASES, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as JoolCase);
  const cases = all.filter((c) => !filter || c.name.includes(filter) || c.direction === filter);
  const documented = documentedDeviations();
  const ran = new Set<string>();
  const failed: string[] = [];
  const deviations: string[] = [];

  for (const c of cases) {
    test(c.name, () => {
      ran.add(c.name);
      let problem: string | null;
      try {
        problem = runCase(c);
      } catch (e) {
        problem = `threw: ${e instanceof Error ? e.stack : String(e)}`;
      }
      if (problem === null) return;
      if (c.jool_specific && documented.has(c.name)) {
        deviations.push(c.name);
        return;
      }
      failed.push(c.name);
      assert.fail(
        `${c.name} (${c.description})${c.jool_specific ? ' [jool_specific, not documented in docs/conformance.md]' : ''}\n${problem}`,
      );
    });
  }

  test('summary: all cases ran', (t) => {
    const passed = ran.size - failed.length - deviations.length;
    t.diagnostic(
      `jool-siit conformance: ${ran.size} of ${all.length} cases ran${filter ? ` (JOOL_FILTER=${filter})` : ''}: ` +
        `${passed} passed, ${failed.length} failed, ${deviations.length} documented deviations`,
    );
    assert.equal(all.length, JOOL_CASE_COUNT, `${JOOL_CASES} holds ${all.length} cases, not ${JOOL_CASE_COUNT}`);
    assert.equal(new Set(all.map((c) => c.name)).size, all.length, 'case names are not unique');
    const missing = cases.filter((c) => !ran.has(c.name)).map((c) => c.name);
    assert.deepEqual(missing, [], 'cases that did not run');
    assert.deepEqual(failed, [], 'cases that failed');
    if (filter) {
      t.skip(`JOOL_FILTER=${filter}: ${cases.length} of ${JOOL_CASE_COUNT} cases selected`);
      return;
    }
    assert.equal(ran.size, JOOL_CASE_COUNT, `${ran.size} of ${JOOL_CASE_COUNT} cases ran`);
    // A documented deviation names a case of the corpus that still differs; one that passes again
    // (or was renamed) must leave docs/conformance.md.
    assert.deepEqual(
      [...documented].filter((n) => !deviations.includes(n)),
      [],
      'docs/conformance.md lists deviations that are not',
    );
  });
});

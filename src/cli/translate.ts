/**
 * `clatd translate`: translate every packet of a pcap file with any SIIT configuration and write
 * the results (forwarded packets and the ICMP errors the translator sends back, in order) as a
 * raw-IP pcap, then print how many packets were dropped for each reason. For people debugging a
 * network, and a second way to test the translator.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createBatch } from '../core/batch.js';
import { ClatdError } from '../core/errors.js';
import type { TranslatorConfig } from '../core/xlat/config.js';
import { Drop, dropName } from '../core/xlat/drop.js';
import { Translator } from '../core/xlat/translator.js';
import { type CommandSpec, enumFlag, intFlag, parseCommand, UsageError } from '../options/args.js';
import { ipPayload, readPcap, writePcap } from '../pcap/pcap.js';

export const spec: CommandSpec = {
  name: 'translate',
  summary:
    'Translate every packet of a pcap file (link types raw IP, Ethernet, Linux cooked) with the given SIIT settings and write the results as a raw-IP pcap.',
  usage: 'clatd translate --in CAPTURE.pcap --out TRANSLATED.pcap [OPTIONS]',
  options: {
    in: { type: 'string', value: 'FILE', help: 'input pcap file' },
    out: { type: 'string', value: 'FILE', help: 'output pcap file (raw IP)' },
    pool6: { type: 'string', value: 'PREFIX', help: 'RFC 6052 prefix (/32, /40, /48, /56, /64 or /96)' },
    eam: { type: 'string', value: 'V4PREFIX=V6PREFIX', multiple: true, help: 'explicit address mapping (RFC 7757)' },
    'own-v4': { type: 'string', value: 'ADDR', help: 'source of ICMPv4 errors the translator generates' },
    'own-v6': { type: 'string', value: 'ADDR', help: 'source of ICMPv6 errors the translator generates' },
    'icmp-src-v4': {
      type: 'string',
      value: 'ADDR',
      help: 'IPv4 source for ICMPv6 errors from unmapped senders',
      default: '192.0.0.8',
    },
    'lowest-ipv6-mtu': { type: 'string', value: 'N', help: 'fragment DF=0 IPv4 packets to fit', default: '1280' },
    'ipv4-mtu': { type: 'string', value: 'N', help: 'MTU of the outgoing IPv4 link', default: '1500' },
    'ipv6-mtu': { type: 'string', value: 'N', help: 'MTU of the outgoing IPv6 link', default: '1500' },
    'udp-zero-checksum': {
      type: 'string',
      value: 'compute|drop',
      help: 'IPv4 UDP with a zero checksum',
      default: 'compute',
    },
    'traffic-class': { type: 'string', value: 'copy|zero', help: 'Traffic Class / TOS handling', default: 'copy' },
    hairpin: { type: 'string', value: 'on|off', help: 'RFC 7757 hairpinning', default: 'on' },
    'v4-sources': {
      type: 'string',
      value: 'any|eam',
      help: 'IPv4 sources to translate (eam: only EAM addresses, as a CLAT)',
      default: 'any',
    },
    'wkp-global-only': {
      type: 'string',
      value: 'on|off',
      help: 'only global IPv4 under 64:ff9b::/96 (RFC 6052 §3.1)',
      default: 'on',
    },
    json: { type: 'boolean', help: 'print the summary as JSON' },
  },
};

/** Builds the translator configuration from parsed flags; exported for tests. */
export function configFromFlags(v: Record<string, unknown>): TranslatorConfig {
  const s = (k: string) => v[k] as string | undefined;
  const onOff = (k: string) => enumFlag('translate', k, s(k), ['on', 'off'] as const) === 'on';
  const eam = ((v.eam as string[] | undefined) ?? []).map((e) => {
    const eq = e.indexOf('=');
    if (eq < 0) throw new UsageError(`clatd translate: --eam must be V4PREFIX=V6PREFIX, got "${e}"`);
    return { v4: e.slice(0, eq), v6: e.slice(eq + 1) };
  });
  if (!s('pool6') && eam.length === 0) throw new UsageError('clatd translate: give --pool6 and/or at least one --eam');
  return {
    pool6: s('pool6') ?? null,
    eam,
    ownV4: s('own-v4') ?? null,
    ownV6: s('own-v6') ?? null,
    icmpSrcV4: s('icmp-src-v4'),
    lowestIpv6Mtu: intFlag('translate', 'lowest-ipv6-mtu', s('lowest-ipv6-mtu'), 1280, 65535),
    ipv4Mtu: intFlag('translate', 'ipv4-mtu', s('ipv4-mtu'), 68, 65535),
    ipv6Mtu: intFlag('translate', 'ipv6-mtu', s('ipv6-mtu'), 1280, 65535),
    udpZeroChecksum: enumFlag('translate', 'udp-zero-checksum', s('udp-zero-checksum'), ['compute', 'drop'] as const),
    trafficClass: enumFlag('translate', 'traffic-class', s('traffic-class'), ['copy', 'zero'] as const),
    hairpin: onOff('hairpin'),
    v4Sources: enumFlag('translate', 'v4-sources', s('v4-sources'), ['any', 'eam'] as const),
    wkpGlobalOnly: onOff('wkp-global-only'),
  };
}

export interface TranslateSummary {
  packets: number;
  notIp: number;
  forwarded: number;
  sentBack: number;
  dropped: Record<string, number>;
}

export async function main(argv: string[]): Promise<number> {
  const parsed = parseCommand(spec, argv);
  if (!parsed) return 0;
  const v = parsed.values;
  if (!v.in) throw new UsageError('clatd translate: --in FILE is required');
  if (!v.out) throw new UsageError('clatd translate: --out FILE is required');
  const cfg = configFromFlags(v);
  let translator: Translator;
  try {
    translator = new Translator(cfg);
  } catch (e) {
    throw new UsageError(`clatd translate: ${e instanceof Error ? e.message : String(e)}`);
  }
  let input: Uint8Array;
  try {
    input = readFileSync(v.in as string);
  } catch (e) {
    throw new ClatdError(`cannot read ${String(v.in)}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const pcap = readPcap(input);
  const out = createBatch(128, 65536 + 256);
  const written: { tsUs: number; data: Uint8Array }[] = [];
  const summary: TranslateSummary = { packets: pcap.records.length, notIp: 0, forwarded: 0, sentBack: 0, dropped: {} };
  for (const r of pcap.records) {
    const ip = ipPayload(pcap.linktype, r.data);
    if (!ip) {
      summary.notIp++;
      continue;
    }
    out.count = 0;
    const d = translator.translatePacket(ip, 0, ip.length, out);
    for (let i = 0; i < out.count; i++) {
      written.push({ tsUs: r.tsUs, data: out.data.slice(out.offs[i], out.offs[i] + out.lens[i]) });
      if (out.disp[i] === 1) summary.sentBack++;
      else summary.forwarded++;
    }
    if (d !== Drop.NONE) summary.dropped[dropName(d)] = (summary.dropped[dropName(d)] ?? 0) + 1;
  }
  try {
    writeFileSync(v.out as string, writePcap(written));
  } catch (e) {
    throw new ClatdError(`cannot write ${String(v.out)}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (v.json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } else {
    const lines = [
      `${summary.packets} packets read, ${summary.forwarded} translated packets and ${summary.sentBack} ICMP errors written to ${String(v.out)}`,
    ];
    if (summary.notIp) lines.push(`${summary.notIp} frames were not IPv4/IPv6 and were skipped`);
    const drops = Object.entries(summary.dropped).sort((a, b) => b[1] - a[1]);
    if (drops.length) {
      lines.push('dropped:');
      for (const [name, n] of drops) lines.push(`  ${name.padEnd(28)} ${n}`);
    } else lines.push('dropped: none');
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return 0;
}

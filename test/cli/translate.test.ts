/** `clatd translate` end to end: a pcap in, a raw-IP pcap out, drop counts printed. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { LINKTYPE_RAW, readPcap, writePcap } from '../../src/pcap/pcap.js';
import { CLI } from '../helpers/paths.js';
import { checksumProblems, ipv4Packet, ipv6Packet, PROTO_ICMP, PROTO_UDP } from '../pkt/build.js';

const dir = mkdtempSync(join(tmpdir(), 'clatd-translate-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]) {
  return spawnSync(process.execPath, [CLI, 'translate', ...args], { encoding: 'utf8' });
}

/** An Ethernet frame around an IP packet. */
function eth(ip: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + ip.length);
  f[12] = ip[0] >>> 4 === 6 ? 0x86 : 0x08;
  f[13] = ip[0] >>> 4 === 6 ? 0xdd : 0x00;
  f.set(ip, 14);
  return f;
}

function ethPcap(frames: Uint8Array[]): Uint8Array {
  const raw = writePcap(frames.map((data, i) => ({ tsUs: 1_000_000 * (i + 1), data })));
  new DataView(raw.buffer).setUint32(20, 1, true); // LINKTYPE_ETHERNET
  return raw;
}

describe('clatd translate', () => {
  const CLAT = ['--pool6', '2001:db8:64::/96', '--eam', '192.0.0.4/32=2001:db8:1:2::4/128'];

  test('translates both directions, skips non-IP frames and counts drops by reason', () => {
    const udp4 = ipv4Packet(
      { src: '192.0.0.4', dst: '198.51.100.10' },
      { proto: PROTO_UDP, sport: 40000, dport: 53, payload: new Uint8Array(20).fill(1) },
    );
    const echo6 = ipv6Packet(
      { src: '2001:db8:64::c633:640a', dst: '2001:db8:1:2::4' },
      { proto: PROTO_ICMP, sport: 7, dport: 1, payload: new Uint8Array(8) },
    );
    // Neither the CLAT address (EAM) nor under pool6: no IPv4 mapping for the destination.
    const unmapped = ipv6Packet(
      { src: '2001:db8:64::c633:640a', dst: '2001:db8:99::1' },
      { proto: PROTO_UDP, sport: 1, dport: 2, payload: new Uint8Array(4) },
    );
    const arp = Uint8Array.of(...new Array(12).fill(0xff), 0x08, 0x06, 0, 1);
    const inFile = join(dir, 'in.pcap');
    const outFile = join(dir, 'out.pcap');
    writeFileSync(inFile, ethPcap([eth(udp4), arp, eth(echo6), eth(unmapped)]));
    const r = run(['--in', inFile, '--out', outFile, ...CLAT, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.packets, 4);
    assert.equal(summary.notIp, 1);
    assert.equal(summary.forwarded, 2);
    assert.deepEqual(summary.dropped, { v6_dst_unmapped: 1 });
    const out = readPcap(readFileSync(outFile));
    assert.equal(out.linktype, LINKTYPE_RAW);
    assert.equal(out.records.length, 2);
    const [p6, p4] = out.records.map((x) => x.data);
    assert.equal(p6[0] >>> 4, 6);
    assert.equal(p6[6], PROTO_UDP);
    assert.deepEqual(checksumProblems(p6), []);
    assert.equal(p4[0] >>> 4, 4);
    assert.equal(p4[9], PROTO_ICMP);
    assert.deepEqual(checksumProblems(p4), []);
    assert.equal(out.records[1].tsUs, 3_000_000, 'the timestamp of the input packet is kept');
  });

  test('human summary names the drop reasons', () => {
    const inFile = join(dir, 'bad.pcap');
    const outFile = join(dir, 'bad-out.pcap');
    writeFileSync(inFile, writePcap([{ tsUs: 0, data: Uint8Array.of(0x45, 0, 0) }]));
    const r = run(['--in', inFile, '--out', outFile, ...CLAT]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /1 packets read, 0 translated packets and 0 ICMP errors/);
    assert.match(r.stdout, /v4_truncated\s+1/);
  });

  test('bad flags and files: one line naming the problem, exit 2 or 1', () => {
    let r = run(['--in', 'x', '--out', 'y', '--pool6', '2001:db8::/80']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /pool6.*32, 40, 48, 56, 64 or 96/);
    r = run(['--in', 'x', '--out', 'y', ...CLAT, '--hairpin', 'maybe']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--hairpin must be one of on, off/);
    r = run(['--in', 'x', '--out', 'y', ...CLAT, '--ipv6-mtu', '1000']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--ipv6-mtu must be between 1280 and 65535/);
    r = run(['--in', join(dir, 'missing.pcap'), '--out', join(dir, 'o.pcap'), ...CLAT]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot read .*missing\.pcap: ENOENT/);
    r = run(['--out', 'y', ...CLAT]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--in FILE is required/);
    for (const res of [r]) assert.equal(res.stderr.trim().split('\n').length, 1);
  });
});

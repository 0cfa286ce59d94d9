/**
 * Child process for dns64-netns.test.ts, run inside a test namespace: a one-question DNS server on
 * [::1] that answers AAAA ipv4only.arpa as told, then discoverPref64ViaDns against it. Prints one
 * JSON line. Does nothing unless started with `--run` (the test runner also loads this file).
 */
import { createSocket } from 'node:dgram';
import { parseIPv6 } from '../../src/core/addr/ipv6.js';
import { formatPrefix6 } from '../../src/core/addr/prefix.js';
import { discoverPref64ViaDns } from '../../src/daemon/dns64.js';

type Mode = 'dns64' | 'nodata' | 'silent';

/** A minimal DNS answer (RFC 1035 §4.1) to the query `q` with `aaaa` records. */
function answer(q: Buffer, aaaa: string[]): Buffer {
  // Question: the name's labels, then QTYPE and QCLASS.
  let o = 12;
  while (q[o] !== 0) o += q[o] + 1;
  const question = q.subarray(12, o + 5);
  const head = Buffer.alloc(12);
  q.copy(head, 0, 0, 2); // ID
  head.writeUInt16BE(0x8180, 2); // QR, RD, RA, NOERROR
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(aaaa.length, 6);
  const rrs = aaaa.map((a) => {
    const rr = Buffer.alloc(12 + 16);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question name
    rr.writeUInt16BE(28, 2); // AAAA
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(60, 6);
    rr.writeUInt16BE(16, 10);
    Buffer.from(parseIPv6(a)).copy(rr, 12);
    return rr;
  });
  return Buffer.concat([head, question, ...rrs]);
}

async function run(mode: Mode): Promise<void> {
  const sock = createSocket('udp6');
  await new Promise<void>((resolve) => sock.bind(0, '::1', resolve));
  sock.on('message', (msg, rinfo) => {
    if (mode === 'silent') return;
    const aaaa = mode === 'dns64' ? ['64:ff9b::c000:aa', '64:ff9b::c000:ab'] : [];
    sock.send(answer(msg, aaaa), rinfo.port, rinfo.address);
  });
  const server = `[::1]:${sock.address().port}`;
  try {
    const p = await discoverPref64ViaDns([server], 300);
    process.stdout.write(`${JSON.stringify({ ok: true, prefixes: p.map(formatPrefix6) })}\n`);
  } catch (e) {
    const err = e as { code?: string; message: string };
    process.stdout.write(`${JSON.stringify({ ok: false, code: err.code, message: err.message })}\n`);
  } finally {
    sock.close();
  }
}

if (process.argv[2] === '--run') await run(process.argv[3] as Mode);

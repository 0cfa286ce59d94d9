/**
 * Client probes the lab runs inside a namespace, each printing one JSON line:
 *   node probe.js http URL                       → { ok, status, bytes, sha256, ms }
 *   node probe.js udp HOST PORT SIZE [TIMEOUT_MS] → { ok, bytes, same, ms }
 *   node probe.js dns NAME SERVER [TYPE]         → { ok, answers }
 *   node probe.js upload URL SIZE                → { ok, bytes, sha256, same, from, ms } (to the lab's upload sink)
 * They use Node itself, so they need no extra packages.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { isIPv6 } from 'node:net';

async function http(url: string): Promise<object> {
  const t0 = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(20_000) });
  const body = Buffer.from(await res.arrayBuffer());
  return {
    ok: res.ok,
    status: res.status,
    bytes: body.length,
    sha256: createHash('sha256').update(body).digest('hex'),
    ms: Math.round(performance.now() - t0),
  };
}

function udp(host: string, port: number, size: number, timeoutMs: number): Promise<object> {
  return new Promise((resolve) => {
    const sock = createSocket({
      type: isIPv6(host) ? 'udp6' : 'udp4',
      recvBufferSize: 4 << 20,
      sendBufferSize: 4 << 20,
    });
    const payload = randomBytes(size);
    const t0 = performance.now();
    const done = (r: object) => {
      clearTimeout(timer);
      sock.close();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, error: `no echo within ${timeoutMs} ms` }), timeoutMs);
    sock.on('message', (msg) => {
      const same = msg.equals(payload);
      done({ ok: same, bytes: msg.length, same, ms: Math.round(performance.now() - t0) });
    });
    sock.on('error', (e) => done({ ok: false, error: e.message }));
    sock.send(payload, port, host);
  });
}

async function dns(name: string, server: string, type: string): Promise<object> {
  const r = new Resolver({ timeout: 3000, tries: 2 });
  r.setServers([server]);
  const answers = type === 'A' ? await r.resolve4(name) : await r.resolve6(name);
  return { ok: answers.length > 0, answers };
}

/** POSTs SIZE random bytes; the sink answers with the length and SHA-256 it read. */
async function upload(url: string, size: number): Promise<object> {
  const body = randomBytes(size);
  const sha256 = createHash('sha256').update(body).digest('hex');
  const t0 = performance.now();
  const res = await fetch(url, { method: 'POST', body, signal: AbortSignal.timeout(20_000) });
  const got = (await res.json()) as { bytes: number; sha256: string; from: string };
  const same = got.bytes === size && got.sha256 === sha256;
  return {
    ok: res.ok && same,
    bytes: got.bytes,
    sha256: got.sha256,
    same,
    from: got.from,
    ms: Math.round(performance.now() - t0),
  };
}

async function main(argv: string[]): Promise<object> {
  const [cmd, a, b, c, d] = argv;
  if (cmd === 'http') return http(a);
  if (cmd === 'udp') return udp(a, Number(b), Number(c ?? 64), Number(d ?? 3000));
  if (cmd === 'dns') return dns(a, b, c ?? 'AAAA');
  if (cmd === 'upload') return upload(a, Number(b));
  throw new Error(`probe: unknown probe "${cmd}" (http, udp, dns, upload)`);
}

main(process.argv.slice(2)).then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
  (e: unknown) => {
    const msg =
      e instanceof Error ? `${e.message}${e.cause instanceof Error ? `: ${e.cause.message}` : ''}` : String(e);
    process.stdout.write(`${JSON.stringify({ ok: false, error: msg })}\n`);
  },
);

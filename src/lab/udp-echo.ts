/**
 * A UDP echo server (RFC 862) for the lab's internet namespace: `node udp-echo.js ADDRESS PORT`.
 * Echoes every datagram, of any size up to 65507 bytes, to its sender.
 */
import { createSocket } from 'node:dgram';

const [host = '0.0.0.0', port = '7'] = process.argv.slice(2);
const sock = createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
sock.on('error', (e) => {
  process.stderr.write(`udp-echo: ${e.message}\n`);
  process.exit(1);
});
sock.bind(Number(port), host, () => process.stdout.write(`udp-echo: listening on ${host}:${port}\n`));
process.on('SIGTERM', () => process.exit(0));

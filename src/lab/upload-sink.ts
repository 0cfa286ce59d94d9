/**
 * An HTTP upload sink for the lab's internet namespace: `node upload-sink.js ADDRESS PORT`. Reads
 * the body of each POST and answers with its length and SHA-256 as JSON, so a client can check
 * that an upload arrived byte for byte.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';

const [host = '0.0.0.0', port = '8080'] = process.argv.slice(2);
const server = createServer((req, res) => {
  const hash = createHash('sha256');
  let bytes = 0;
  req.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    hash.update(chunk);
  });
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ bytes, sha256: hash.digest('hex'), from: req.socket.remoteAddress }));
  });
});
server.listen(Number(port), host, () => process.stdout.write(`upload-sink: listening on ${host}:${port}\n`));
process.on('SIGTERM', () => process.exit(0));

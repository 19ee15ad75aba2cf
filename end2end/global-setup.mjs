// Starts one Stride for the browser tests: its own data dir and a free loopback port.
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export default async function globalSetup() {
  const bin = process.env.STRIDE_BIN;
  if (!bin) throw new Error('STRIDE_BIN must name the stride binary (cargo xtask test sets it)');
  const dataDir = mkdtempSync(join(tmpdir(), 'stride-e2e-'));
  const port = await freePort();
  const log = openSync(join(dataDir, 'stride.log'), 'a');
  // Health probes go to the agent's hostname: keep them on loopback.
  const args = ['--data-dir', dataDir, '--http-address', `127.0.0.1:${port}`, '--agent-hostname', '127.0.0.1'];
  const child = spawn(bin, args, {
    stdio: ['ignore', log, log],
    detached: true,
    env: { ...process.env, RUST_LOG: 'info' },
  });
  child.unref();
  const url = `http://127.0.0.1:${port}`;
  process.env.STRIDE_URL = url;
  process.env.STRIDE_DATA_DIR = dataDir;
  writeFileSync(join(dataDir, 'stride.pid'), String(child.pid));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${url}/ping`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`stride did not start; see ${join(dataDir, 'stride.log')}`);
}

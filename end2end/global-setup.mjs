// Starts one Stride for the browser tests: its own data dir and a free loopback port.
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForServer } from './processes.mjs';

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
  await waitForServer(`${url}/ping`, `stride (see ${join(dataDir, 'stride.log')})`);
}

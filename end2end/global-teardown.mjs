// Stops the test's Stride and kills every task process group it started.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { kill, killTasks } from './processes.mjs';

export default async function globalTeardown() {
  const dataDir = process.env.STRIDE_DATA_DIR;
  if (!dataDir) return;
  const pidFile = join(dataDir, 'stride.pid');
  if (existsSync(pidFile)) kill(-Number(readFileSync(pidFile, 'utf8')));
  killTasks(join(dataDir, 'agent'));
  if (!process.env.KEEP_STRIDE_DATA) rmSync(dataDir, { recursive: true, force: true });
}

// Stops the test's Stride and kills every task process group it started (tasks run in their
// own sessions, so they outlive Stride by design).
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

function kill(pid, signal = 'SIGKILL') {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

export default async function globalTeardown() {
  const dataDir = process.env.STRIDE_DATA_DIR;
  if (!dataDir) return;
  const pidFile = join(dataDir, 'stride.pid');
  if (existsSync(pidFile)) kill(-Number(readFileSync(pidFile, 'utf8')));
  const sandboxes = join(dataDir, 'agent', 'sandboxes');
  if (existsSync(sandboxes)) {
    for (const task of readdirSync(sandboxes)) {
      const pids = join(sandboxes, task, 'pids.json');
      if (!existsSync(pids)) continue;
      const { task_pgid: group, supervisor_pid: supervisor } = JSON.parse(readFileSync(pids, 'utf8'));
      if (group > 1) kill(-group);
      if (supervisor > 1) kill(supervisor);
    }
  }
  if (!process.env.KEEP_STRIDE_DATA) rmSync(dataDir, { recursive: true, force: true });
}

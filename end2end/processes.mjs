// Process helpers shared by the global teardown and the tests that start Strides of their own:
// free loopback ports, waiting for a server, killing what a Stride's agent started (tasks run in
// their own sessions, so they outlive Stride by design) and unmounting its volumes.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export function kill(pid, signal = 'SIGKILL') {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/// Waits until `url` answers 2xx.
export async function waitForServer(url, what) {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not start`);
}

/// Kills every task process group and supervisor of the agent whose work dir is `agentDir`.
export function killTasks(agentDir) {
  const sandboxes = join(agentDir, 'sandboxes');
  if (!existsSync(sandboxes)) return;
  for (const task of readdirSync(sandboxes)) {
    const pids = join(sandboxes, task, 'pids.json');
    if (!existsSync(pids)) continue;
    const { task_pgid: group, supervisor_pid: supervisor } = JSON.parse(readFileSync(pids, 'utf8'));
    if (group > 1) kill(-group);
    if (supervisor > 1) kill(supervisor);
  }
}

/// Unmounts every file system mounted under `dir` (the built-in agents' loop-mounted volumes),
/// so that removing `dir` removes everything and leaves no loop device behind.
export function unmountUnder(dir) {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  for (const point of mounts.map((line) => line.split(' ')[4]).filter(Boolean)) {
    if (point === dir || point.startsWith(`${dir}/`)) {
      try {
        execFileSync('umount', ['--lazy', point]);
      } catch {
        // already gone
      }
    }
  }
}

// A built-in master with two agents. The Agents page: an agent is cut off from the page (after a
// confirmation), shows as unreachable with its task, the app spread across both agents waits
// with the constraint named, and the agent is brought back. The app page of a resident app: its
// volumes (one on the root disk, one on a MOUNT disk of the agent's), attached while its task
// runs.
import { expect, test } from '@playwright/test';
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, kill, killTasks, unmountUnder, waitForServer } from '../processes.mjs';
import { shots } from '../screens.mjs';

const hosts = ['node-1', 'node-2'];

/// Each agent's resources in Mesos' JSON form, with a MOUNT disk under its own work dir.
const agentResources = JSON.stringify([
  { name: 'cpus', type: 'SCALAR', scalar: { value: 2 } },
  { name: 'mem', type: 'SCALAR', scalar: { value: 2048 } },
  { name: 'disk', type: 'SCALAR', scalar: { value: 512 } },
  { name: 'disk', type: 'SCALAR', scalar: { value: 64 },
    disk: { source: { type: 'MOUNT', mount: { root: 'disks/fast' } } } },
]);

/// A Stride of its own with the two agents, in a fresh directory; `stop` kills it and every
/// task it started, unmounts its volumes and removes the directory.
async function twoAgentStride() {
  const dir = mkdtempSync(join(tmpdir(), 'stride-e2e-agents-'));
  const port = await freePort();
  const log = openSync(join(dir, 'stride.log'), 'a');
  const child = spawn(process.env.STRIDE_BIN, [
    '--http-address', `127.0.0.1:${port}`, '--data-dir', join(dir, 'data'),
    '--agent', 'node-1;rack:r1', '--agent', 'node-2;rack:r2',
    '--agent-resources', agentResources, '--mesos-role', '*,data',
  ], { stdio: ['ignore', log, log], detached: true, env: { ...process.env, RUST_LOG: 'info' } });
  child.unref();
  const stop = () => {
    kill(-child.pid);
    for (const host of hosts) killTasks(join(dir, 'data', 'agents', host));
    unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  };
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitForServer(`${base}/ping`, 'stride');
  } catch (e) {
    stop();
    throw e;
  }
  return { base, stop };
}

async function createApp(base, app) {
  const created = await fetch(`${base}/v2/apps`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(app),
  });
  expect(created.status).toBe(201);
}

test('agents are listed, cut off and brought back from the Agents page', async ({ page }) => {
  const { base, stop } = await twoAgentStride();
  try {

    await createApp(base, {
      id: '/e2e/spread', cmd: 'sleep 600', cpus: 0.1, mem: 32, instances: 2,
      constraints: [['hostname', 'UNIQUE']],
      unreachableStrategy: { inactiveAfterSeconds: 1, expungeAfterSeconds: 3600 },
    });

    await page.goto(`${base}/agents`);
    await expect(page.locator('[data-hydrated="true"]').first()).toBeAttached();
    const rows = page.getByTestId('agent-row');
    await expect(rows).toHaveCount(2);
    for (const host of hosts) {
      const row = page.locator(`[data-testid="agent-row"][data-hostname="${host}"]`);
      await expect(row).toHaveAttribute('data-state', 'Active');
      await expect(row.getByTestId('running-tasks')).toHaveText('1 running');
    }
    await expect(page.getByTestId('agents-headline')).toHaveText('2 agents');
    await shots(page, 'agents-01-two-active');

    const first = page.locator('[data-testid="agent-row"][data-hostname="node-1"]');
    await first.getByTestId('disconnect-agent').click();
    await expect(page.getByRole('dialog')).toContainText('Cut node-1 off?');
    await shots(page, 'agents-02-confirm');
    await page.getByTestId('confirm-disconnect').click();
    await expect(page.getByRole('dialog')).toHaveCount(0);
    await expect(first).toHaveAttribute('data-state', 'Unreachable');
    await expect(first.getByTestId('unreachable-tasks')).toHaveText('1 unreachable');
    await expect(page.getByTestId('agents-headline')).toHaveText('2 agents · 1 unreachable');
    // Unreachable agents come first.
    await expect(rows.first()).toHaveAttribute('data-hostname', 'node-1');
    await shots(page, 'agents-03-one-unreachable');

    // The replacement has nowhere to go: node-2 has the app's other instance already.
    await page.goto(`${base}/apps/e2e/spread`);
    await expect(page.getByTestId('waiting-banner')).toContainText('hostname:UNIQUE');
    await shots(page, 'agents-04-app-waits-for-the-constraint');

    await page.goto(`${base}/agents`);
    await first.getByTestId('reconnect-agent').click();
    await expect(first).toHaveAttribute('data-state', 'Active');
    await expect(page.getByTestId('agents-headline')).toHaveText('2 agents');
  } finally {
    stop();
  }
});

test('a resident app shows its volumes, attached while its task runs', async ({ page }) => {
  const { base, stop } = await twoAgentStride();
  try {
    await createApp(base, {
      id: '/e2e/db', role: 'data', cmd: 'sleep 600', cpus: 0.1, mem: 32,
      container: {
        type: 'MESOS',
        volumes: [
          { containerPath: 'data', mode: 'RW', persistent: { size: 16 } },
          { containerPath: 'fast', mode: 'RW', persistent: { type: 'mount', size: 32 } },
        ],
      },
    });
    await page.goto(`${base}/apps/e2e/db`);
    await expect(page.locator('[data-hydrated="true"]').first()).toBeAttached();
    await page.getByRole('tab', { name: /Volumes/ }).click();
    const rows = page.getByTestId('volume-row');
    await expect(rows).toHaveCount(2);
    const row = rows.filter({ hasText: '16 MiB' });
    await expect(row).toHaveAttribute('data-status', 'Attached');
    await expect(row).toContainText(/node-[12]/);
    await expect(row.getByTestId('volume-disk')).toHaveText('root');
    // The mount volume takes its disk whole: 64 MiB, though it asked for 32.
    const mount = rows.filter({ hasText: 'disks/fast' });
    await expect(mount).toContainText('64 MiB');
    await expect(mount).toHaveAttribute('data-status', 'Attached');
    await expect(mount.getByTestId('volume-disk')).toHaveText(/^mount \/.*\/disks\/fast$/);
    await shots(page, 'agents-05-volumes');

    // Scaled to 0, the instance stops and its volume waits for it.
    const scaled = await fetch(`${base}/v2/apps/e2e/db`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances: 0 }),
    });
    expect(scaled.status).toBe(200);
    await expect(row).toHaveAttribute('data-status', 'Detached');
    await expect(mount).toHaveAttribute('data-status', 'Detached');
  } finally {
    stop();
  }
});

// The Agents page on a built-in master with two agents: an agent is cut off from the page (after
// a confirmation), shows as unreachable with its task, the app spread across both agents waits
// with the constraint named, and the agent is brought back.
import { expect, test } from '@playwright/test';
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, kill, killTasks, waitForServer } from '../processes.mjs';
import { shots } from '../screens.mjs';

const hosts = ['node-1', 'node-2'];

test('agents are listed, cut off and brought back from the Agents page', async ({ page }) => {
  const dir = mkdtempSync(join(tmpdir(), 'stride-e2e-agents-'));
  let stride;
  try {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const log = openSync(join(dir, 'stride.log'), 'a');
    stride = spawn(process.env.STRIDE_BIN, [
      '--http-address', `127.0.0.1:${port}`, '--data-dir', join(dir, 'data'),
      '--agent', 'node-1;rack:r1', '--agent', 'node-2;rack:r2', '--agent-resources', 'cpus:2;mem:2048',
    ], { stdio: ['ignore', log, log], detached: true, env: { ...process.env, RUST_LOG: 'info' } });
    stride.unref();
    await waitForServer(`${base}/ping`, 'stride');

    const created = await fetch(`${base}/v2/apps`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        id: '/e2e/spread', cmd: 'sleep 600', cpus: 0.1, mem: 32, instances: 2,
        constraints: [['hostname', 'UNIQUE']],
        unreachableStrategy: { inactiveAfterSeconds: 1, expungeAfterSeconds: 3600 },
      }),
    });
    expect(created.status).toBe(201);

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
    if (stride) kill(-stride.pid);
    for (const host of hosts) killTasks(join(dir, 'data', 'agents', host));
    rmSync(dir, { recursive: true, force: true });
  }
});

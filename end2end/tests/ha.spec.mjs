// The dashboard across a failover: two Strides on one Postgres and a `stride master`, the
// browser on the standby. The leader is killed; the page shows the new leader and goes on
// receiving live events. (`cargo xtask test` provides the Postgres in STRIDE_TEST_POSTGRES.)
import { expect, test } from '@playwright/test';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, kill, killTasks, waitForServer } from '../processes.mjs';
import { shot } from '../screens.mjs';

function start(args, dir, name) {
  const log = openSync(join(dir, `${name}.log`), 'a');
  const child = spawn(process.env.STRIDE_BIN, args, {
    stdio: ['ignore', log, log],
    detached: true,
    env: { ...process.env, RUST_LOG: 'info' },
  });
  child.unref();
  return child;
}

/// A new database on the test Postgres, and its URL.
function database() {
  const admin = process.env.STRIDE_TEST_POSTGRES;
  if (!admin) throw new Error('STRIDE_TEST_POSTGRES must name a Postgres (cargo xtask test sets it)');
  const name = `stride_e2e_${Date.now()}`;
  execFileSync('psql', [admin, '-q', '-c', `CREATE DATABASE ${name}`]);
  return admin.replace(/\/[^/]*$/, `/${name}`);
}

test('the dashboard shows the leader and keeps working across a failover', async ({ page }) => {
  const dir = mkdtempSync(join(tmpdir(), 'stride-e2e-ha-'));
  const processes = [];
  try {
    const store = database();
    const masterPort = await freePort();
    processes.push(
      start(['master', '--listen', `127.0.0.1:${masterPort}`, '--data-dir', join(dir, 'master'),
        '--agent-hostname', '127.0.0.1'], dir, 'master'),
    );
    await waitForServer(`http://127.0.0.1:${masterPort}/master/state`, 'stride master');
    const ports = [await freePort(), await freePort()];
    const strides = ports.map((port, i) => {
      const child = start(['--http-address', `127.0.0.1:${port}`, '--data-dir', join(dir, `stride-${i}`),
        '--master', `http://127.0.0.1:${masterPort}`, '--store', store, '--leader-lease-seconds', '2'],
      dir, `stride-${i}`);
      processes.push(child);
      return child;
    });
    for (const port of ports) await waitForServer(`http://127.0.0.1:${port}/ping`, 'stride');
    let leader = '';
    await expect
      .poll(async () => {
        const answer = await fetch(`http://127.0.0.1:${ports[0]}/v2/leader`);
        leader = answer.ok ? (await answer.json()).leader : '';
        return leader;
      })
      .toMatch(/^127\.0\.0\.1:\d+$/);
    const leaderIndex = ports.findIndex((port) => leader.endsWith(`:${port}`));
    const standbyPort = ports[1 - leaderIndex];
    const standby = `http://127.0.0.1:${standbyPort}`;

    await page.goto(`${standby}/`);
    await expect(page.locator('[data-hydrated="true"]').first()).toBeAttached();
    await expect(page.getByTestId('leader')).toContainText(leader);
    await expect(page.getByTestId('live-indicator')).toHaveAttribute('data-live', 'connected');
    await shot(page, 'ha-01-standby-shows-the-leader');

    kill(-strides[leaderIndex].pid);
    await expect(page.getByTestId('leader')).toContainText(`127.0.0.1:${standbyPort}`);
    await expect(page.getByTestId('live-indicator')).toHaveAttribute('data-live', 'connected');

    // Live events reach the page from the new leader.
    const created = await fetch(`${standby}/v2/apps`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: '/after-failover', cmd: 'sleep 600', cpus: 0.01, mem: 16 }),
    });
    expect(created.status).toBe(201);
    await expect(page.locator('[data-testid="app-row"][data-app-id="/after-failover"]')).toBeVisible();
    await shot(page, 'ha-02-after-failover');
  } finally {
    for (const child of processes) kill(-child.pid);
    killTasks(join(dir, 'master', 'agent'));
    rmSync(dir, { recursive: true, force: true });
  }
});

// The dashboard in a real browser: create an app with the form, watch its tasks go RUNNING live,
// scale it, read a task's output, destroy it. Screenshots are kept in test-results/.
import { expect, test } from '@playwright/test';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { shot, shots } from '../screens.mjs';

const base = () => process.env.STRIDE_URL;

async function open(page, path) {
  await page.goto(`${base()}${path}`);
  await expect(page.locator('[data-hydrated="true"]').first()).toBeAttached();
}

test('create, watch, scale and destroy an app from the dashboard', async ({ page }) => {
  await open(page, '/');
  await shot(page, '01-empty');

  const form = page.getByTestId('create-app-form');
  await expect(form).toBeVisible();

  // The server's validation errors are shown under the field they belong to.
  await form.getByTestId('field-id').fill('/Bad_Id');
  await form.getByTestId('field-cmd').fill('sleep 600');
  await form.getByTestId('create-app-submit').click();
  await expect(page.locator('[data-testid="field-error"][data-field="id"]')).toBeVisible();
  await shot(page, '02-validation');

  await form.getByTestId('field-id').fill('/e2e/web');
  await form.getByTestId('field-cmd').fill('echo serving on $PORT0; exec python3 -m http.server --bind 127.0.0.1 $PORT0');
  await form.getByTestId('field-cpus').fill('0.05');
  await form.getByTestId('field-mem').fill('32');
  await form.getByTestId('field-instances').fill('1');
  await form.getByTestId('create-app-submit').click();

  // The app page follows the launch live, without reloading.
  await expect(page).toHaveURL(/\/apps\/e2e\/web$/);
  const running = page.locator('[data-testid="task-row"][data-state="TASK_RUNNING"]');
  await expect(running).toHaveCount(1);
  await expect(page.getByTestId('live-indicator')).toHaveAttribute('data-live', 'connected');
  await shot(page, '03-running');

  await page.getByTestId('instances-input').fill('3');
  await page.getByTestId('scale-button').click();
  await expect(running).toHaveCount(3);
  await shot(page, '04-scaled');

  // A task's output is one click away.
  await running.first().click();
  await expect(page.getByTestId('task-log')).toContainText('serving on');
  await shot(page, '05-logs');

  const tasks = await (await fetch(`${base()}/v2/apps/e2e/web/tasks`)).json();
  expect(tasks.tasks).toHaveLength(3);

  await page.getByTestId('destroy-button').click();
  await page.getByTestId('confirm-destroy').click();
  await expect(page).toHaveURL(new RegExp(`${base()}/?$`));
  await expect(page.locator('[data-testid="app-row"][data-app-id="/e2e/web"]')).toHaveCount(0);
  await expect
    .poll(async () => (await fetch(`${base()}/v2/apps/e2e/web`)).status)
    .toBe(404);
  await shot(page, '06-destroyed');
});

test('the events page shows the live stream', async ({ page }) => {
  await open(page, '/events');
  await fetch(`${base()}/v2/apps`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: '/e2e/events', cmd: 'sleep 600', cpus: 0.01, mem: 16 }),
  });
  await expect(page.locator('[data-testid="event-row"]', { hasText: 'status_update_event' }).first()).toBeVisible();
  await shot(page, '07-events');
  await fetch(`${base()}/v2/apps/e2e/events?force=true`, { method: 'DELETE' });
});

const web = 'echo ok > health; exec python3 -m http.server --bind 127.0.0.1 $PORT0';

async function api(method, path, body) {
  const response = await fetch(`${base()}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json().catch(() => null) };
}

test('a rolling upgrade watched live, then a failing one rolled back', async ({ page }) => {
  const created = await api('POST', '/v2/apps', {
    id: '/e2e/roll',
    cmd: web,
    cpus: 0.1,
    mem: 64,
    instances: 3,
    upgradeStrategy: { minimumHealthCapacity: 1, maximumOverCapacity: 0 },
    healthChecks: [{ protocol: 'HTTP', path: '/health', portIndex: 0, intervalSeconds: 1, gracePeriodSeconds: 30 }],
  });
  expect(created.status).toBe(201);
  await open(page, '/apps/e2e/roll');
  const healthy = page.locator('[data-testid="task-row"][data-health="healthy"]');
  await expect(healthy).toHaveCount(3);
  await shots(page, '08-healthy');

  // The upgrade shows new and old side by side while it runs, one instance at a time.
  expect((await api('PUT', '/v2/apps/e2e/roll', { env: { RELEASE: '2' } })).status).toBe(200);
  const panel = page.getByTestId('upgrade-panel');
  await expect(panel).toBeVisible();
  await expect(page.locator('[data-testid="task-row"][data-outdated="true"]').first()).toBeVisible();
  await shots(page, '09-upgrading');
  await expect(panel).toBeHidden();
  await expect(page.locator('[data-testid="task-row"][data-outdated="false"][data-health="healthy"]')).toHaveCount(3);
  await expect(page.locator('[data-testid="task-row"][data-outdated="true"]')).toHaveCount(0);

  // A version that never turns healthy stalls, old instances untouched; roll it back.
  const failing = await api('PUT', '/v2/apps/e2e/roll', { cmd: 'exec python3 -m http.server --bind 127.0.0.1 $PORT0' });
  expect(failing.status).toBe(200);
  await expect(page.getByTestId('upgrade-new')).toContainText('0 of 3 ready');
  await open(page, '/deployments');
  const card = page.locator(`[data-testid="deployment-card"][data-deployment-id="${failing.body.deploymentId}"]`);
  await expect(card).toBeVisible();
  await expect(card.locator('[data-step-state="current"]')).toContainText('RestartApplication');
  await shots(page, '10-deployments');
  await card.getByTestId('rollback-button').click();
  await shot(page, '11-confirm-rollback');
  await page.getByTestId('confirm-stop').click();
  await expect(page.getByTestId('no-deployments')).toBeVisible();
  const app = await api('GET', '/v2/apps/e2e/roll');
  expect(app.body.app.cmd).toBe(web);
  expect(app.body.app.tasksHealthy).toBe(3);
  await shot(page, '12-rolled-back');

  // The apps list shows the group as a tree that folds.
  await open(page, '/');
  const group = page.locator('[data-testid="group-row"][data-group-id="/e2e"]');
  await expect(group).toBeVisible();
  await expect(page.locator('[data-testid="app-row"][data-app-id="/e2e/roll"]')).toBeVisible();
  await shots(page, '13-apps-tree');
  await group.getByRole('button').click();
  await expect(page.locator('[data-testid="app-row"][data-app-id="/e2e/roll"]')).toHaveCount(0);
  await api('DELETE', '/v2/apps/e2e/roll?force=true');
});

test('the metrics page draws the last minutes and shows each event subscriber', async ({ page }) => {
  // One subscriber that takes every event, one that nothing answers (port 9 is closed).
  const { createServer } = await import('node:http');
  let received = 0;
  const receiver = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      received += 1;
      response.end();
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const live = `http://127.0.0.1:${receiver.address().port}/events`;
  const dead = 'http://127.0.0.1:9/events';
  for (const url of [live, dead]) {
    expect((await api('POST', `/v2/eventSubscriptions?callbackUrl=${url}`)).status).toBe(200);
  }
  expect((await api('POST', '/v2/apps', { id: '/e2e/measured', cmd: 'sleep 600', cpus: 0.01, mem: 16, instances: 2 })).status).toBe(201);

  await open(page, '/monitor');
  const rows = page.locator('[data-testid="subscribers"] tbody tr');
  await expect(rows).toHaveCount(2);
  await expect(page.locator(`tr[data-url="${dead}"]`)).toContainText('Failing');
  await expect(page.locator(`tr[data-url="${live}"]`)).toContainText('Delivering');
  // A sample every 5 s, and the page refreshes itself: the launches show up without a reload.
  await expect(page.locator('[data-testid="spark-launches"] svg')).toBeVisible();
  const peak = async () => {
    const text = await page.locator('[data-testid="spark-launches"] .hint').last().textContent();
    return Number(text.match(/peak ([0-9.]+)/)[1]);
  };
  await expect.poll(peak, { timeout: 30_000 }).toBeGreaterThanOrEqual(2);
  expect(received).toBeGreaterThan(0);
  await shots(page, '10-metrics');

  for (const url of [live, dead]) {
    await api('DELETE', `/v2/eventSubscriptions?callbackUrl=${url}`);
  }
  await api('DELETE', '/v2/apps/e2e/measured?force=true');
  receiver.close();
});

test('the app page shows its service port and each task in or out of the load balancer', async ({ page }) => {
  const created = await api('POST', '/v2/apps', {
    id: '/e2e/balanced',
    cmd: web,
    cpus: 0.05,
    mem: 32,
    instances: 2,
    portDefinitions: [{ port: 0, name: 'http', labels: { VIP_0: '/e2e/balanced:8080' } }],
    healthChecks: [{ protocol: 'HTTP', path: '/health', portIndex: 0, intervalSeconds: 1, gracePeriodSeconds: 30, maxConsecutiveFailures: 1000 }],
  });
  expect(created.status).toBe(201);
  const servicePort = created.body.portDefinitions[0].port;
  expect(servicePort).toBeGreaterThanOrEqual(10000);
  await open(page, '/apps/e2e/balanced');
  const address = `127.0.0.1:${servicePort}`;
  await expect(page.getByTestId('service-port')).toContainText(address);
  // Its VIP, at the address /v2/vips gives it.
  const vips = (await api('GET', '/v2/vips')).body;
  const vip = vips.find((v) => v.vip === '/e2e/balanced:8080');
  await expect(page.getByTestId('service-port')).toContainText(`VIP ${vip.address}`);
  const inRotation = page.locator('[data-testid="rotation"][data-rotation="In"]');
  await expect(inRotation).toHaveCount(2);
  // The service port answers, through the balancer, from a task.
  const answer = await fetch(`http://${address}/health`);
  expect(answer.status).toBe(200);
  await shots(page, '14-load-balancer');

  // One task fails its check: it is out of the rotation, and says why.
  const tasks = (await api('GET', '/v2/apps/e2e/balanced/tasks')).body.tasks;
  rmSync(join(process.env.STRIDE_DATA_DIR, 'agent', 'sandboxes', tasks[0].id, 'health'));
  const out = page.locator('[data-testid="rotation"][data-rotation="Unhealthy"]');
  await expect(out).toHaveCount(1);
  await expect(out).toHaveText('Out: unhealthy');
  await expect(inRotation).toHaveCount(1);
  await shots(page, '15-out-of-rotation');
  expect((await api('DELETE', '/v2/apps/e2e/balanced?force=true')).status).toBe(200);
});

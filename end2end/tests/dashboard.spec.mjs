// The dashboard in a real browser: create an app with the form, watch its tasks go RUNNING live,
// scale it, read a task's output, destroy it. Screenshots are kept in test-results/.
import { expect, test } from '@playwright/test';

const base = () => process.env.STRIDE_URL;

async function open(page, path) {
  await page.goto(`${base()}${path}`);
  await expect(page.locator('[data-hydrated="true"]').first()).toBeAttached();
}

async function shot(page, name) {
  await page.screenshot({ path: test.info().outputPath(`${name}.png`), fullPage: true });
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
  await form.getByTestId('field-cmd').fill('echo serving on $PORT0; exec python3 -m http.server $PORT0');
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

// Containers from the dashboard: the create form's runtime choice and image field, its error
// under the image when a Docker container names none, and the app page's image line for a MESOS
// container of an image built here from Debian's static busybox (umoci) and put into the test
// Stride's store with `stride image load`, so that no registry is needed.
import { expect, test } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shots } from '../screens.mjs';

const base = () => process.env.STRIDE_URL;
const IMAGE = 'localhost/e2e/busybox:1';

async function open(page, path) {
  await page.goto(`${base()}${path}`);
  await expect(page.locator('[data-hydrated="true"]').first()).toBeAttached();
}

/// An OCI archive of one layer holding busybox as /bin/*, loaded into the Stride's store.
function loadBusyboxImage() {
  const dir = mkdtempSync(join(tmpdir(), 'stride-e2e-image-'));
  try {
    const layout = join(dir, 'oci');
    const bundle = join(dir, 'bundle');
    const run = (program, args) => execFileSync(program, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    run('umoci', ['init', '--layout', layout]);
    run('umoci', ['new', '--image', `${layout}:bb`]);
    run('umoci', ['unpack', '--image', `${layout}:bb`, bundle]);
    const bin = join(bundle, 'rootfs', 'bin');
    mkdirSync(bin, { recursive: true });
    copyFileSync('/bin/busybox', join(bin, 'busybox'));
    for (const tool of ['sh', 'sleep', 'echo']) symlinkSync('busybox', join(bin, tool));
    run('umoci', ['repack', '--image', `${layout}:bb`, bundle]);
    run('umoci', ['config', '--image', `${layout}:bb`, '--config.env', 'PATH=/bin']);
    const archive = join(dir, 'image.tar');
    run('tar', ['-C', layout, '-cf', archive, '.']);
    run(process.env.STRIDE_BIN, ['image', 'load', archive, '--name', IMAGE, '--data-dir', process.env.STRIDE_DATA_DIR]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a container app from the create form shows its image on its page', async ({ page }) => {
  loadBusyboxImage();
  await open(page, '/');
  // With no apps yet the form is on the page; otherwise it opens in a dialog.
  const form = page.getByTestId('create-app-form');
  const create = page.getByTestId('create-button');
  await expect(create.or(form)).toBeVisible();
  if (await create.isVisible()) await create.click();
  await expect(form).toBeVisible();
  await expect(form.getByTestId('field-image')).toHaveCount(0);

  // A Docker container must name its image: the server says so under the field.
  await form.getByTestId('field-id').fill('/e2e/boxed');
  await form.getByTestId('runtime-docker').check();
  await expect(form.getByTestId('field-container-port')).toBeVisible();
  await form.getByTestId('create-app-submit').click();
  await expect(form.locator('[data-testid="field-error"][data-field="image"]')).toContainText(/must not be empty/i);
  await shots(page, '20-container-form');

  // A MESOS container of the loaded image runs the command in it.
  await form.getByTestId('runtime-mesos').check();
  await expect(form.getByTestId('field-container-port')).toHaveCount(0);
  await form.getByTestId('field-image').fill(IMAGE);
  await form.getByTestId('field-cmd').fill('echo in the image; exec sleep 600');
  await form.getByTestId('field-cpus').fill('0.05');
  await form.getByTestId('field-mem').fill('32');
  await form.getByTestId('field-instances').fill('1');
  await form.getByTestId('create-app-submit').click();

  await expect(page).toHaveURL(/\/apps\/e2e\/boxed$/);
  await expect(page.locator('[data-testid="task-row"][data-state="TASK_RUNNING"]')).toHaveCount(1);
  const line = page.getByTestId('container-image');
  await expect(line).toContainText(IMAGE);
  await expect(line).toContainText('MESOS container');
  await shots(page, '21-container-app');

  const app = await (await fetch(`${base()}/v2/apps/e2e/boxed`)).json();
  expect(app.app.container).toMatchObject({ type: 'MESOS', docker: { image: IMAGE } });
  await fetch(`${base()}/v2/apps/e2e/boxed?force=true`, { method: 'DELETE' });
  await expect
    .poll(async () => (await fetch(`${base()}/v2/apps/e2e/boxed`)).status)
    .toBe(404);
});

// Screenshots for a look at what the tests see, kept in test-results/ beside each test.
import { test } from '@playwright/test';

export async function shot(page, name) {
  await page.screenshot({ path: test.info().outputPath(`${name}.png`), fullPage: true });
}

/// Light, dark and a 390 px phone, for a look at the page as it is now.
export async function shots(page, name) {
  await shot(page, `${name}-light`);
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot(page, `${name}-dark`);
  await page.emulateMedia({ colorScheme: 'light' });
  const size = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, `${name}-phone`);
  await page.setViewportSize(size);
}

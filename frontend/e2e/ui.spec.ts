// Qualities that do not depend on the agent's state: theme, keyboard, small screens, errors.
import { expectAccessible } from './axe';
import { agentClient, expect, test } from './stack';

test('dark by default; the toggle persists across reloads', async ({ page }) => {
  await page.goto('/');
  await expect(page.locator('html')).toHaveClass(/dark/);
  const toggle = page.getByRole('button', { name: 'Dark mode' });
  await expect(toggle).toHaveAttribute('aria-pressed', 'true');
  await toggle.click();
  await expect(page.locator('html')).not.toHaveClass(/dark/);
  await page.reload();
  await expect(page.locator('html')).not.toHaveClass(/dark/);
  await page.getByRole('button', { name: 'Dark mode' }).click();
  await expect(page.locator('html')).toHaveClass(/dark/);
});

test('the fleet is usable from the keyboard', async ({ page, request, stack }) => {
  const client = await agentClient(request, stack);
  await page.goto('/');
  const row = page.getByRole('row', { name: new RegExp(client.hostname) });
  await expect(row).toBeVisible();
  const link = row.getByRole('link', { name: client.hostname, exact: true });
  for (let i = 0; i < 40 && !(await link.evaluate((el) => el === document.activeElement)); i++) {
    await page.keyboard.press('Tab');
  }
  await expect(link).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(new RegExp(`/clients/${client.client_id}$`));
});

test('fits a phone screen without sideways scrolling', async ({ page, request, stack }) => {
  const client = await agentClient(request, stack);
  await page.setViewportSize({ width: 390, height: 844 });
  for (const path of ['/', `/clients/${client.client_id}`, '/models', '/audit']) {
    await page.goto(path);
    await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, `${path} scrolls sideways`).toBeLessThanOrEqual(1);
  }
});

test('an unknown client shows a clear error, not a blank page', async ({ page }) => {
  await page.goto('/clients/no-such-client');
  await expect(page.getByRole('alert')).toContainText('Could not load this client');
});

test('a response that breaks the contract names the field', async ({ page }) => {
  // The fleet page asks for a page of clients (`/clients?limit=...`): match the path, not the query.
  await page.route(
    (url) => url.pathname === '/api/v1/clients',
    async (route) => {
      await route.fulfill({ json: { items: [{ client_id: 'x', hostname: 'x', status: 'sleeping' }] } });
    }
  );
  await page.goto('/');
  const alert = page.getByRole('alert');
  await expect(alert).toContainText('does not understand');
  await expect(alert).toContainText('items.0');
});

test('says Reconnecting while the live stream is unreachable, then recovers by itself', async ({ page }) => {
  // The stream's address carries what it watches and where it resumes: match any query.
  await page.route('**/api/v1/live**', (route) => route.abort());
  await page.goto('/');
  const indicator = page.getByTestId('connection-indicator');
  await expect(indicator).toHaveText(/Reconnecting/);
  await expectAccessible(page);
  await page.unroute('**/api/v1/live**');
  await expect(indicator).toHaveText(/Live/, { timeout: 45_000 });
});

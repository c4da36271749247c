// What a keyboard or screen reader user relies on beyond axe's rules: status changes are
// announced, the skip link leads into the page, a dialog gives focus back when it closes.
// Runs before lifecycle.spec.ts (file order), while the agent is alive; leaves Ollama up.
import { agentClient, expect, setOllamaMode, test } from './stack';

test('a client changing status is announced politely, on the fleet and on its page', async ({
  page,
  request,
  stack
}) => {
  const client = await agentClient(request, stack);
  const announcer = page.getByTestId('status-announcer');
  const badge = page.getByRole('row', { name: new RegExp(client.hostname) }).getByTestId('status-badge');

  await page.goto('/');
  await expect(badge).toHaveText('online');
  await expect(announcer).toHaveAttribute('aria-live', 'polite');
  await expect(announcer).toHaveText('');
  try {
    await setOllamaMode(request, stack, 'down');
    await expect(announcer).toHaveText(`${client.hostname} is now degraded.`, { timeout: 20_000 });

    await page.goto(`/clients/${client.client_id}`);
    await expect(page.getByRole('heading', { level: 1, name: client.hostname })).toBeVisible();
    await setOllamaMode(request, stack, 'ok');
    await expect(page.getByTestId('status-announcer')).toHaveText(`${client.hostname} is now online.`, {
      timeout: 20_000
    });
  } finally {
    await setOllamaMode(request, stack, 'ok');
  }
});

test('the skip link takes keyboard focus past the header into the page', async ({ page }) => {
  await page.goto('/models');
  await expect(page.getByRole('heading', { level: 1, name: 'Models' })).toBeVisible();
  await page.keyboard.press('Tab');
  const skip = page.getByRole('link', { name: 'Skip to content' });
  await expect(skip).toBeFocused();
  await expect(skip).toBeInViewport();
  await page.keyboard.press('Enter');
  await page.keyboard.press('Tab');
  const inMain = await page.evaluate(() => document.activeElement?.closest('main') !== null);
  expect(inMain, 'the next Tab after the skip link lands inside <main>').toBe(true);
});

test("closing an event's payload dialog gives focus back to the button that opened it", async ({ page }) => {
  await page.goto('/audit');
  const events = page.getByRole('table', { name: 'Events' });
  const first = events.getByRole('button', { name: /Payload of event/ }).first();
  const name = (await first.getAttribute('aria-label'))!;
  const opener = events.getByRole('button', { name, exact: true });
  await opener.focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog');
  await expect(dialog.getByTestId('event-data')).toBeVisible();
  await expect
    .poll(() => page.evaluate(() => document.activeElement?.closest('dialog') !== null), {
      message: 'focus moves into the dialog'
    })
    .toBe(true);
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();
  await expect(opener).toBeFocused();
});

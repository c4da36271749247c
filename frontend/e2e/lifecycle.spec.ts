// One agent's life as the dashboard shows it: online, degraded when Ollama stops, back,
// a model change (and the state before it), the audit log, and offline once the agent dies.
import { expectAccessible } from './axe';
import { addOllamaModel, agentClient, expect, setOllamaMode, test, type ApiClient } from './stack';

test.describe.configure({ mode: 'serial' });

const NEW_MODEL = 'e2e-added:1b';
let client: ApiClient;
/** A moment after registration and before the model change, as an ISO string. */
let beforeChange = '';

test.beforeAll(async ({ request, stack }) => {
  client = await agentClient(request, stack);
});

const row = (page: import('@playwright/test').Page, hostname: string) =>
  page.getByRole('row', { name: new RegExp(hostname) });

test('the agent appears online in the fleet', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByTestId('connection-indicator')).toHaveText(/Live/);
  const line = row(page, client.hostname);
  await expect(line).toBeVisible();
  await expect(line.getByTestId('status-badge')).toHaveText('online');
  await expect(page.getByTestId('count-online')).toHaveText('1');
});

test('it turns degraded when Ollama stops, without a reload, and recovers', async ({
  page,
  request,
  stack
}) => {
  await page.goto('/');
  await expect(page.getByTestId('connection-indicator')).toHaveText(/Live/);
  const badge = row(page, client.hostname).getByTestId('status-badge');
  await expect(badge).toHaveText('online');
  // A marker on window survives only if the page is never reloaded.
  await page.evaluate(() => ((window as unknown as { e2eMarker: number }).e2eMarker = 1));

  await setOllamaMode(request, stack, 'down');
  await expect(badge).toHaveText('degraded', { timeout: 20_000 });
  // The degraded badge and the Ollama error line have colours of their own.
  await expectAccessible(page);

  await setOllamaMode(request, stack, 'ok');
  await expect(badge).toHaveText('online', { timeout: 20_000 });
  expect(await page.evaluate(() => (window as unknown as { e2eMarker?: number }).e2eMarker)).toBe(1);
});

test('the client page shows the timeline of those changes', async ({ page }) => {
  await page.goto(`/clients/${client.client_id}`);
  await expect(page.getByRole('heading', { level: 1, name: client.hostname })).toBeVisible();
  const timeline = page.getByRole('list', { name: 'Client timeline' });
  await expect(timeline.locator('[data-type="ClientRegistered"]')).toHaveCount(1);
  await expect(timeline.locator('[data-type="OllamaBecameUnavailable"]').first()).toBeVisible();
  await expect(timeline.locator('[data-type="OllamaBecameAvailable"]').first()).toBeVisible();
  await expect(page.getByRole('list', { name: /Last 24 hours/ }).getByRole('button')).toHaveCount(24);
  await expect(page.getByRole('list', { name: /Last 90 days/ }).getByRole('button')).toHaveCount(90);
});

test('a new model shows up live on the client page', async ({ page, request, stack }) => {
  await page.goto(`/clients/${client.client_id}`);
  const installed = page.getByRole('table', { name: 'Installed models' });
  await expect(installed).toBeVisible();
  await expect(installed.getByRole('cell', { name: NEW_MODEL })).toHaveCount(0);

  // Take a moment strictly after everything so far and before the change (whole seconds,
  // as the datetime-local input has them), waiting on the server clock rather than sleeping.
  const info = await (await request.get(`${stack.base_url}/api/v1/info`)).json();
  const mark = Math.floor(Date.parse(info.server_time) / 1000) * 1000 + 1000;
  beforeChange = new Date(mark).toISOString();
  await expect
    .poll(
      async () => Date.parse((await (await request.get(`${stack.base_url}/api/v1/info`)).json()).server_time),
      {
        timeout: 10_000
      }
    )
    .toBeGreaterThan(mark + 1000);

  await addOllamaModel(request, stack, NEW_MODEL);
  await expect(installed.getByRole('cell', { name: NEW_MODEL })).toBeVisible({ timeout: 30_000 });
  await expect(
    page.getByRole('list', { name: 'Client timeline' }).getByText(NEW_MODEL).first()
  ).toBeVisible();
});

test('"state as of" before the model change shows the old model set', async ({ page }) => {
  expect(beforeChange, 'set by the previous test').not.toBe('');
  await page.goto('/audit');
  const form = page.getByRole('form', { name: 'State as of' });
  await form.getByLabel('Scope').selectOption({ value: client.client_id });
  // timezoneId is UTC, so local time in the input is UTC.
  await form.getByLabel('As of (local time)').fill(beforeChange.slice(0, 19));
  await form.getByRole('button', { name: 'Show state' }).click();
  const models = page.getByTestId('state-snapshot').getByTestId('state-model');
  await expect(models.first()).toBeVisible();
  await expect(models.filter({ hasText: NEW_MODEL })).toHaveCount(0);
  const before = await models.count();

  await form.getByLabel('As of (local time)').fill(new Date(Date.now() + 60_000).toISOString().slice(0, 19));
  await form.getByRole('button', { name: 'Show state' }).click();
  await expect(models.filter({ hasText: NEW_MODEL })).toHaveCount(1);
  await expect(models).toHaveCount(before + 1);
});

test('the audit page lists events, filters them, shows a payload and exports NDJSON', async ({
  page,
  request,
  stack
}) => {
  // The page opens on the newest events, newest on top. The stack's log is a few dozen events
  // long here, so pages of 10 (the dashboard asks for 100) make several to page through.
  await page.route('**/api/v1/events?*', (route) => {
    const url = new URL(route.request().url());
    url.searchParams.set('limit', '10');
    return route.continue({ url: url.toString() });
  });
  const head = async () =>
    (
      (await (await request.get(`${stack.base_url}/api/v1/events?before=${2 ** 53 - 1}&limit=1`)).json()) as {
        items: { position: number }[];
      }
    ).items[0]!.position;
  const headBefore = await head();
  await page.goto('/audit');
  const events = page.getByRole('table', { name: 'Events' });
  const positions = async () =>
    (await events.locator('tbody tr td:first-child').allTextContents()).map(Number);
  await expect(events.getByRole('cell', { name: 'HeartbeatReceived' }).first()).toBeVisible();
  const newest = await positions();
  expect(newest).toHaveLength(10);
  expect(newest[0]).toBeGreaterThanOrEqual(headBefore);
  expect(newest).toEqual([...newest].sort((a, b) => b - a));
  const nav = page.getByRole('navigation', { name: 'Event pages' });
  await expect(nav.getByRole('button', { name: 'Newer' })).toBeDisabled();

  // "Older" pages back in time and keeps the cursor in the URL; "Newer" comes back.
  await nav.getByRole('button', { name: 'Older' }).click();
  await expect(page).toHaveURL(new RegExp(`before=${newest.at(-1)}`));
  await expect.poll(async () => (await positions())[0]).toBe(newest.at(-1)! - 1);
  const older = await positions();
  await nav.getByRole('button', { name: 'Newer' }).click();
  await expect(page).toHaveURL(new RegExp(`after=${older[0]}`));
  await expect.poll(async () => (await positions()).at(-1)).toBe(older[0]! + 1);

  // The start of the log, reached by its URL: the server's start and the registration.
  await page.goto('/audit?before=11');
  await expect(events.getByRole('cell', { name: 'ServerStarted' }).first()).toBeVisible();
  await expect(events.getByRole('cell', { name: 'ClientRegistered' }).first()).toBeVisible();
  await expect(nav.getByRole('button', { name: 'Older' })).toBeDisabled();
  await expect(nav).toContainText('start of the log');
  await nav.getByRole('button', { name: 'Newest' }).click();
  await expect(page).not.toHaveURL(/before=|after=/);
  await expect.poll(async () => (await positions())[0]).toBeGreaterThanOrEqual(newest[0]!);

  const form = page.getByRole('form', { name: 'Filter events' });
  await form.getByLabel('Event type').selectOption('ModelAdded');
  await form.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/type=ModelAdded/);
  await expect(events.getByRole('cell', { name: 'ModelAdded' }).first()).toBeVisible();
  await expect(events.getByRole('cell', { name: 'ServerStarted' })).toHaveCount(0);

  await events
    .getByRole('button', { name: /Payload of event/ })
    .first()
    .click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toContainText('ModelAdded');
  await expect(dialog.getByTestId('event-data')).toContainText('"name"');
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();

  const href = await page.getByRole('link', { name: /Export NDJSON/ }).getAttribute('href');
  expect(href).toContain('/api/v1/events/export');
  const body = await (await request.get(`${stack.base_url}${href}`)).text();
  const lines = body
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { type: string });
  expect(lines.length).toBeGreaterThan(0);
  expect(lines.every((event) => event.type === 'ModelAdded')).toBe(true);
});

test('it goes offline after the agent dies', async ({ page, stack }) => {
  test.skip(!stack.agent_pid, 'the stack did not report the agent pid');
  await page.goto('/');
  const badge = row(page, client.hostname).getByTestId('status-badge');
  await expect(badge).toHaveText('online');
  // SIGKILL: no clean deregistration, so the server must notice the silence itself.
  process.kill(stack.agent_pid!, 'SIGKILL');
  const timeoutS = stack.timeout_s ?? 30;
  await expect(badge).toHaveText('offline', { timeout: (timeoutS + 15) * 1000 });
  await expect(page.getByTestId('connection-indicator')).toHaveText(/Live/);
  await expectAccessible(page);
});

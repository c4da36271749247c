// The audit page's storage panel (GET /storage, the archived ranges) and the toggle that reads
// the archive too (include_archived=true on /events and the export link).
import { expect, test } from './stack';

interface StorageBody {
  log: { bytes: number | null; head: number };
  archive: { segments: number; events: number };
  last_compaction: unknown;
}

test('the storage panel shows what the server reports', async ({ page, request, stack }) => {
  const storage = (await (await request.get(`${stack.base_url}/api/v1/storage`)).json()) as StorageBody;
  await page.goto('/audit');
  const panel = page.getByRole('region', { name: 'Storage' });
  const log = panel.getByTestId('storage-log');
  // The log grows while the agent heartbeats: the panel's head is at least the one read above.
  await expect(log).toContainText('head at position');
  const head = Number((await log.textContent())!.match(/head at position ([\d,]+)/)![1]!.replaceAll(',', ''));
  expect(head).toBeGreaterThanOrEqual(storage.log.head);
  await expect(panel.getByTestId('storage-archive')).toContainText(
    `${storage.archive.events.toLocaleString('en-US')} event`
  );
  await expect(panel.getByTestId('storage-last-verify')).toContainText('not recorded by the server');
  if (storage.archive.segments === 0) {
    await expect(panel.getByTestId('no-archived-ranges')).toContainText('Nothing archived yet');
    await expect(panel.getByTestId('storage-last-compaction')).toContainText('none yet');
  }
});

test('"Include archived events" asks the server for the archive too', async ({ page }) => {
  await page.goto('/audit');
  const events = page.getByRole('table', { name: 'Events' });
  await expect(events.getByRole('cell', { name: 'HeartbeatReceived' }).first()).toBeVisible();
  const form = page.getByRole('form', { name: 'Filter events' });
  const asked = page.waitForRequest(
    (r) =>
      r.url().includes('/api/v1/events?') && new URL(r.url()).searchParams.get('include_archived') === 'true'
  );
  await form.getByLabel('Include archived events').check();
  await form.getByRole('button', { name: 'Apply' }).click();
  await asked;
  await expect(page).toHaveURL(/archived=include/);
  await expect(events.getByRole('cell', { name: 'HeartbeatReceived' }).first()).toBeVisible();
  await expect(page.getByRole('link', { name: 'Export NDJSON' })).toHaveAttribute(
    'href',
    /include_archived=true/
  );

  // The URL keeps the choice: a reload still reads the archive, and unticking drops it.
  await page.reload();
  await expect(form.getByLabel('Include archived events')).toBeChecked();
  await form.getByLabel('Include archived events').uncheck();
  await form.getByRole('button', { name: 'Apply' }).click();
  await expect(page).not.toHaveURL(/archived=include/);
  await expect(page.getByRole('link', { name: 'Export NDJSON' })).not.toHaveAttribute(
    'href',
    /include_archived/
  );
});

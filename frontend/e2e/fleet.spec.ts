// The fleet table asks the server for what it shows: search, status filter and sort go out as
// GET /clients parameters and the rows come back from the real server.
import type { Page, Request } from '@playwright/test';
import { agentClient, expect, test } from './stack';

/** Every GET /clients the page sends from now on, as its query parameters. */
function clientRequests(page: Page): URLSearchParams[] {
  const seen: URLSearchParams[] = [];
  page.on('request', (request: Request) => {
    const url = new URL(request.url());
    if (url.pathname === '/api/v1/clients') seen.push(url.searchParams);
  });
  return seen;
}

test('search, filter and sort happen on the server, one page at a time', async ({ page, request, stack }) => {
  const client = await agentClient(request, stack);
  const sent = clientRequests(page);
  await page.goto('/');
  const row = page.getByRole('row', { name: new RegExp(client.hostname) });
  await expect(row).toBeVisible();
  expect(sent[0]?.get('limit')).toBe('100');
  expect(sent[0]?.get('sort')).toBe('status');
  await expect(page.getByTestId('count-total')).toHaveText('1');

  const search = page.getByRole('searchbox', { name: 'Search clients' });
  await search.fill(client.hostname.slice(0, 4).toUpperCase());
  await expect.poll(() => sent.at(-1)?.get('q')).toBe(client.hostname.slice(0, 4).toUpperCase());
  await expect(row).toBeVisible();
  await search.fill('zz-no-such-host');
  await expect(page.getByText('No client matches these filters.')).toBeVisible();
  await expect(page.getByText('0 of 1 clients')).toBeVisible();
  await expect(page.getByTestId('count-total')).toHaveText('1'); // counts are fleet-wide
  await search.fill('');
  await expect(row).toBeVisible();

  await page.getByRole('combobox', { name: 'Status' }).selectOption('offline');
  await expect.poll(() => sent.at(-1)?.get('status')).toBe('offline');
  await expect(page.getByText('No client matches these filters.')).toBeVisible();
  await page.getByRole('combobox', { name: 'Status' }).selectOption('');
  await expect(row).toBeVisible();

  const host = page.getByRole('columnheader', { name: 'Host' });
  await host.getByRole('button').click();
  await expect(host).toHaveAttribute('aria-sort', 'ascending');
  await expect.poll(() => `${sent.at(-1)?.get('sort')} ${sent.at(-1)?.get('order')}`).toBe('hostname asc');
  await host.getByRole('button').click();
  await expect(host).toHaveAttribute('aria-sort', 'descending');
  await expect.poll(() => `${sent.at(-1)?.get('sort')} ${sent.at(-1)?.get('order')}`).toBe('hostname desc');
  await expect(row).toBeVisible();
});

test('the models matrix asks for a page of hosts', async ({ page, request, stack }) => {
  await agentClient(request, stack);
  const asked: URLSearchParams[] = [];
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (url.pathname === '/api/v1/models') asked.push(url.searchParams);
  });
  await page.goto('/models');
  await expect(page.getByRole('table', { name: 'Models by host' })).toBeVisible();
  expect(asked[0]?.get('hosts_limit')).toBe('40');
});

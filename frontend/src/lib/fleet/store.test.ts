import { get } from 'svelte/store';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ClientPageQuery } from '$lib/api/client';
import { NetworkError } from '$lib/api/errors';
import type { ClientPage, ClientSummary } from '$lib/api/schemas';
import { clientSummary } from '$lib/testing/fixtures';
import { createFleetStore } from './store';
import { DEFAULT_QUERY } from './table';

const counts = { online: 2, degraded: 1, offline: 0, stopped: 0, unknown: 0, decommissioned: 0 };

function page(items: ClientSummary[], next: string | null = null, matched = items.length): ClientPage {
  return { items, next_cursor: next, matched, total: 3, counts };
}

/** A fake server: pages of `rows` by cursor (the cursor is the index to start at). */
function fakeApi(rows: ClientSummary[]) {
  const clientPage = vi.fn(async (query: ClientPageQuery) => {
    const start = query.cursor ? Number(query.cursor) : 0;
    const end = start + query.limit;
    return page(rows.slice(start, end), end < rows.length ? String(end) : null, rows.length);
  });
  const fleetSummary = vi.fn(async () => ({ total: rows.length, counts, labels: ['rack=1'] }));
  return { clientPage, fleetSummary };
}

const three = () => [
  clientSummary({ client_id: 'a', hostname: 'a', position: 1 }),
  clientSummary({ client_id: 'b', hostname: 'b', position: 2 }),
  clientSummary({ client_id: 'c', hostname: 'c', position: 3 })
];

describe('fleet store', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('asks the server for the first page of a query, with counts and labels', async () => {
    const api = fakeApi(three());
    const store = createFleetStore(api, { pageSize: 2, refreshMs: 0 });
    expect(get(store).phase).toBe('idle');
    await store.setQuery({ ...DEFAULT_QUERY, search: 'x' });
    expect(api.clientPage).toHaveBeenCalledWith(
      expect.objectContaining({ sort: 'status', search: 'x', limit: 2, cursor: null }),
      expect.anything()
    );
    expect(get(store)).toMatchObject({
      phase: 'ready',
      rows: [{ client_id: 'a' }, { client_id: 'b' }],
      page: 1,
      pages: 2,
      hasNext: true,
      matched: 3,
      total: 3,
      counts,
      labels: ['rack=1']
    });
  });

  it('pages forward by cursor and back again', async () => {
    const api = fakeApi(three());
    const store = createFleetStore(api, { pageSize: 2, refreshMs: 0 });
    await store.setQuery(DEFAULT_QUERY);
    await store.next();
    expect(get(store)).toMatchObject({ rows: [{ client_id: 'c' }], page: 2, hasNext: false });
    expect(api.clientPage.mock.calls[1]?.[0].cursor).toBe('2');
    await store.next(); // no next page: nothing asked
    expect(api.clientPage).toHaveBeenCalledTimes(2);
    await store.previous();
    expect(get(store)).toMatchObject({ rows: [{ client_id: 'a' }, { client_id: 'b' }], page: 1 });
    expect(api.clientPage.mock.calls[2]?.[0].cursor).toBeNull();
  });

  it('starts again at page 1 for a new query, and asks nothing for the same one', async () => {
    const api = fakeApi(three());
    const store = createFleetStore(api, { pageSize: 2, refreshMs: 0 });
    await store.setQuery(DEFAULT_QUERY);
    await store.next();
    await store.setQuery({ ...DEFAULT_QUERY, search: '  ' });
    expect(api.clientPage).toHaveBeenCalledTimes(2);
    await store.setQuery({ ...DEFAULT_QUERY, statuses: ['online'] });
    expect(api.clientPage.mock.calls[2]?.[0]).toMatchObject({ statuses: ['online'], cursor: null });
    expect(get(store).page).toBe(1);
  });

  it('keeps the error for the page to show', async () => {
    const error = new NetworkError('/clients');
    const store = createFleetStore(
      { clientPage: async () => Promise.reject(error), fleetSummary: async () => Promise.reject(error) },
      { refreshMs: 0 }
    );
    await store.setQuery(DEFAULT_QUERY);
    expect(get(store)).toMatchObject({ phase: 'error', error });
  });

  it('batches live updates of rows in view into one publish, and ignores the rest', async () => {
    const store = createFleetStore(fakeApi(three()), { flushMs: 250, refreshMs: 0 });
    await store.setQuery(DEFAULT_QUERY);
    const publishes = vi.fn();
    const unsubscribe = store.subscribe(publishes);
    publishes.mockClear();
    store.apply(clientSummary({ client_id: 'a', hostname: 'a', position: 5, status: 'degraded' }));
    store.apply(clientSummary({ client_id: 'a', hostname: 'a', position: 6, status: 'offline' }));
    store.apply(clientSummary({ client_id: 'b', hostname: 'b', position: 7, status: 'stopped' }));
    store.apply(clientSummary({ client_id: 'elsewhere', position: 8 }));
    expect(publishes).not.toHaveBeenCalled();
    vi.advanceTimersByTime(250);
    expect(publishes).toHaveBeenCalledTimes(1);
    const rows = get(store).rows;
    expect(rows.map((r) => [r.client_id, r.status])).toEqual([
      ['a', 'offline'],
      ['b', 'stopped'],
      ['c', 'online']
    ]);
    unsubscribe();
  });

  it('ignores updates older than what it holds', async () => {
    const store = createFleetStore(fakeApi([clientSummary({ position: 10, status: 'online' })]), {
      refreshMs: 0
    });
    await store.setQuery(DEFAULT_QUERY);
    store.apply(clientSummary({ position: 9, status: 'offline' }));
    store.flush();
    expect(get(store).rows[0]?.status).toBe('online');
  });

  it('asks for the page in view again on its timer, until paused', async () => {
    const api = fakeApi(three());
    const store = createFleetStore(api, { pageSize: 2, refreshMs: 15_000 });
    await store.setQuery(DEFAULT_QUERY);
    await store.next();
    expect(api.clientPage).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(15_000);
    expect(api.clientPage).toHaveBeenCalledTimes(3);
    expect(api.clientPage.mock.calls[2]?.[0].cursor).toBe('2'); // the same page
    store.pause();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(api.clientPage).toHaveBeenCalledTimes(3);
    store.dispose();
  });

  it('takes counts from the live feed', async () => {
    const store = createFleetStore(fakeApi(three()), { refreshMs: 0 });
    await store.setQuery(DEFAULT_QUERY);
    store.applyCounts(4, { online: 1, offline: 3 });
    expect(get(store)).toMatchObject({ total: 4, counts: { online: 1, offline: 3, degraded: 0 } });
  });

  it('drops an answer that a newer request overtook', async () => {
    const slow: ((value: ClientPage) => void)[] = [];
    const store = createFleetStore(
      {
        clientPage: () => new Promise<ClientPage>((resolve) => slow.push(resolve)),
        fleetSummary: async () => ({ total: 0, counts, labels: [] })
      },
      { refreshMs: 0 }
    );
    const first = store.setQuery({ ...DEFAULT_QUERY, search: 'old' });
    const second = store.setQuery({ ...DEFAULT_QUERY, search: 'new' });
    await vi.waitFor(() => expect(slow).toHaveLength(2));
    slow[1]?.(page([clientSummary({ client_id: 'new' })]));
    await second;
    slow[0]?.(page([clientSummary({ client_id: 'old' })]));
    await first;
    expect(get(store).rows.map((r) => r.client_id)).toEqual(['new']);
  });
});

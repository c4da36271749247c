import { describe, expect, it, vi } from 'vitest';
import { clientSummary, compactedStorage, freshStorage, jsonResponse } from '$lib/testing/fixtures';
import { apiUrl, createApi, exportUrl } from './client';
import { ApiError, DashboardError, NetworkError, SchemaError } from './errors';

describe('apiUrl', () => {
  it('drops empty values and repeats arrays', () => {
    expect(apiUrl('/events', { stream: null, after: 5, limit: undefined, type: ['A', 'B'], to: '' })).toBe(
      '/api/v1/events?after=5&type=A&type=B'
    );
  });

  it('builds the export link from the list filters', () => {
    expect(
      exportUrl({ stream: 'client-a', types: ['ModelAdded', 'ModelRemoved'], after: 300, limit: 100 })
    ).toBe('/api/v1/events/export?stream=client-a&type=ModelAdded%2CModelRemoved');
  });
});

describe('createApi', () => {
  it('returns validated data from the requested URL', async () => {
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) =>
      jsonResponse({ items: [clientSummary()] })
    );
    const api = createApi(fetch);
    const clients = await api.clients();
    expect(clients[0]?.client_id).toBe('gpu-01');
    expect(fetch).toHaveBeenCalledWith(
      '/api/v1/clients',
      expect.objectContaining({ headers: { accept: 'application/json' } })
    );
  });

  it('asks for a page of clients with the server-side sort, filters and cursor', async () => {
    const counts = { online: 1, degraded: 0, offline: 0, stopped: 0, unknown: 0, decommissioned: 0 };
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) =>
      jsonResponse({ items: [clientSummary()], next_cursor: 'abc', matched: 1, total: 1, counts })
    );
    const page = await createApi(fetch).clientPage({
      sort: 'status',
      order: 'desc',
      statuses: ['online', 'degraded'],
      labels: ['rack=1', 'env=prod'],
      search: ' gpu ',
      limit: 100,
      cursor: 'xyz'
    });
    expect(page.next_cursor).toBe('abc');
    expect(fetch.mock.calls[0]?.[0]).toBe(
      '/api/v1/clients?sort=status&order=desc&status=online%2Cdegraded&label=rack%3D1&label=env%3Dprod&q=gpu&limit=100&cursor=xyz'
    );
    await createApi(fetch).clientPage({ limit: 10 });
    expect(fetch.mock.calls[1]?.[0]).toBe('/api/v1/clients?limit=10');
  });

  it('encodes ids and passes query parameters', async () => {
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) =>
      jsonResponse({ items: [], next_before: null })
    );
    await createApi(fetch).clientTimeline('a b', 42, 20);
    expect(fetch.mock.calls[0]?.[0]).toBe('/api/v1/clients/a%20b/timeline?before=42&limit=20');
  });

  it('joins event types with commas', async () => {
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) =>
      jsonResponse({ items: [], next_after: null })
    );
    await createApi(fetch).events({
      stream: 'client-x',
      types: ['ModelAdded', 'ModelRemoved'],
      after: 3,
      limit: 50
    });
    expect(fetch.mock.calls[0]?.[0]).toBe(
      '/api/v1/events?stream=client-x&type=ModelAdded%2CModelRemoved&after=3&limit=50'
    );
  });

  it('pages back with before and leaves it out of the export link', async () => {
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) =>
      jsonResponse({ items: [], next_after: 41, next_before: null })
    );
    const page = await createApi(fetch).events({ stream: 'system', after: null, before: 42, limit: 100 });
    expect(fetch.mock.calls[0]?.[0]).toBe('/api/v1/events?stream=system&before=42&limit=100');
    expect(page.next_after).toBe(41);
    expect(exportUrl({ stream: 'system', before: 42, limit: 100 })).toBe(
      '/api/v1/events/export?stream=system'
    );
  });

  it('asks for the archive with include_archived=true, on the page and the export link', async () => {
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) =>
      jsonResponse({ items: [], next_after: null, next_before: null })
    );
    await createApi(fetch).events({ before: 42, limit: 100, includeArchived: true });
    expect(fetch.mock.calls[0]?.[0]).toBe('/api/v1/events?before=42&limit=100&include_archived=true');
    await createApi(fetch).events({ before: 42, limit: 100, includeArchived: false });
    expect(fetch.mock.calls[1]?.[0]).toBe('/api/v1/events?before=42&limit=100');
    expect(exportUrl({ stream: 'system', before: 42, includeArchived: true })).toBe(
      '/api/v1/events/export?stream=system&include_archived=true'
    );
  });

  it('reads GET /storage, before any measurement and after a compaction', async () => {
    const fresh = freshStorage();
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) => jsonResponse(fresh));
    expect(await createApi(fetch).storage()).toEqual(fresh);
    expect(fetch.mock.calls[0]?.[0]).toBe('/api/v1/storage');

    const compacted = compactedStorage();
    const storage = await createApi(async () => jsonResponse(compacted)).storage();
    expect(storage).toEqual(compacted);
    const broken = createApi(async () => jsonResponse({ ...compacted, log: { bytes: 1 } }));
    await expect(broken.storage()).rejects.toBeInstanceOf(SchemaError);
  });

  it('throws ApiError with the server code and detail', async () => {
    const api = createApi(async () => jsonResponse({ code: 'client_not_found', detail: 'No client x' }, 404));
    const error = await api.client('x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toBeInstanceOf(DashboardError);
    expect(error).toMatchObject({
      status: 404,
      code: 'client_not_found',
      detail: 'No client x',
      path: '/clients/x'
    });
  });

  it('keeps the status when the error body is not JSON', async () => {
    const api = createApi(
      async () => new Response('<html>Bad gateway</html>', { status: 502, statusText: 'Bad Gateway' })
    );
    await expect(api.clients()).rejects.toMatchObject({
      status: 502,
      code: 'http_502',
      detail: 'Bad Gateway'
    });
  });

  it('turns a 422 detail list into text', async () => {
    const api = createApi(async () =>
      jsonResponse({ code: 'validation_error', detail: [{ loc: ['at'] }] }, 422)
    );
    await expect(api.fleetState('nope')).rejects.toMatchObject({
      code: 'validation_error',
      detail: '[{"loc":["at"]}]'
    });
  });

  it('throws SchemaError naming the field that does not match', async () => {
    const api = createApi(async () =>
      jsonResponse({ items: [clientSummary(), clientSummary({ models_count: -1 })] })
    );
    const error = await api.clients().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaError);
    expect((error as SchemaError).field).toBe('items.1.models_count');
    expect((error as SchemaError).message).toContain('items.1.models_count');
  });

  it('throws SchemaError when the body is not JSON', async () => {
    const api = createApi(async () => new Response('<!doctype html>', { status: 200 }));
    await expect(api.models()).rejects.toBeInstanceOf(SchemaError);
  });

  it('throws NetworkError when fetch fails', async () => {
    const api = createApi(async () => {
      throw new TypeError('Failed to fetch');
    });
    const error = await api.info().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetworkError);
    expect((error as NetworkError).path).toBe('/info');
  });
});

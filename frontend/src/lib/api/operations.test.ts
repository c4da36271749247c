import { describe, expect, it, vi } from 'vitest';
import { jsonResponse } from '$lib/testing/fixtures';
import { createApi } from './client';
import { ApiError } from './errors';

// As the server sends it: hosts keyed by client id, `finished_at` while it runs is null.
const operation = {
  id: 'op1',
  action: 'pull',
  model: 'llama3:8b',
  selector: { client_ids: ['a', 'b'] },
  max_parallel: 4,
  requested_at: '2026-12-04T17:00:00Z',
  expires_at: '2026-12-04T18:00:00Z',
  finished_at: null,
  counts: { queued: 0, running: 1, succeeded: 0, failed: 1, cancelled: 0, expired: 0 },
  targets: {
    b: { state: 'failed', status: null, completed: null, total: null, reason: 'read-only agent' },
    a: { state: 'running', status: 'pulling abc', completed: 5, total: 10, reason: null }
  }
};

describe('operations in the API wrapper', () => {
  it('reads one finished operation', async () => {
    const done = { ...operation, finished_at: '2026-12-04T17:05:00Z' };
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) => jsonResponse(done));
    const one = await createApi(fetch).operation('op1', 't');
    expect(one.finished).toBe(true);
    expect(fetch.mock.calls[0]?.[0]).toBe('/api/v1/operations/op1');
  });

  it('posts a request as JSON with the admin token', async () => {
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) =>
      jsonResponse({ operation_id: 'op1', targets: ['a', 'b'] }, 202)
    );
    const created = await createApi(fetch).requestOperation(
      { action: 'pull', model: 'llama3:8b', targets: { labels: { rack: '1' } } },
      'sekret'
    );
    expect(created).toEqual({ operation_id: 'op1', targets: ['a', 'b'] });
    const [url, init] = fetch.mock.calls[0] ?? [];
    expect(url).toBe('/api/v1/operations');
    expect(init?.method).toBe('POST');
    expect(init?.headers).toMatchObject({
      authorization: 'Bearer sekret',
      'content-type': 'application/json'
    });
    expect(JSON.parse(String(init?.body))).toEqual({
      action: 'pull',
      model: 'llama3:8b',
      targets: { labels: { rack: '1' } }
    });
  });

  it('reads operations with the token and validates their targets', async () => {
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) => jsonResponse({ items: [operation] }));
    const items = await createApi(fetch).operations('t');
    expect(items[0]?.operation_id).toBe('op1');
    expect(items[0]?.finished).toBe(false);
    expect(items[0]?.targets.map((t) => [t.client_id, t.state])).toEqual([
      ['a', 'running'],
      ['b', 'failed']
    ]);
    expect(items[0]?.targets[1]?.reason).toBe('read-only agent');
    expect(fetch.mock.calls[0]?.[1]?.headers).toMatchObject({ authorization: 'Bearer t' });
  });

  it('raises the server refusal with its code', async () => {
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) =>
      jsonResponse({ code: 'forbidden', detail: 'this action needs the admin token' }, 403)
    );
    const failure = createApi(fetch).cancelOperation('op 1', 'wrong');
    await expect(failure).rejects.toBeInstanceOf(ApiError);
    await expect(failure).rejects.toMatchObject({ status: 403, code: 'forbidden' });
    expect(fetch.mock.calls[0]?.[1]?.method).toBe('POST');
    expect(fetch.mock.calls[0]?.[0]).toBe('/api/v1/operations/op%201/cancel');
  });
});

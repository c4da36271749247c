import { describe, expect, it, vi } from 'vitest';
import { createApi } from '$lib/api/client';
import { ApiError } from '$lib/api/errors';
import { jsonResponse } from '$lib/testing/fixtures';
import { alertsBody, rule, ruleBody } from './fixtures';
import { draftFromRule, draftToRequest } from './rules';

describe('the API wrapper for alerts', () => {
  it('PUTs a rule with the admin token and reads the answer', async () => {
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) => jsonResponse(ruleBody));
    const result = draftToRequest(draftFromRule(rule));
    if (!result.ok) throw new Error('the fixture rule is valid');
    const saved = await createApi(fetch).updateAlertRule(rule.id, result.body, 'tok');
    expect(saved.id).toBe(rule.id);
    const [url, init] = fetch.mock.calls[0]!;
    expect(url).toBe(`/api/v1/alerts/rules/${rule.id}`);
    expect(init?.method).toBe('PUT');
    expect((init?.headers as Record<string, string>).authorization).toBe('Bearer tok');
    expect(JSON.parse(String(init?.body)).notify.webhooks).toEqual([{ url: 'https://hooks.test/obt' }]);
  });

  it('DELETEs a rule (204, no body) and turns a 404 into its code', async () => {
    const ok = vi.fn(async (_url: string, _init?: RequestInit) => new Response(null, { status: 204 }));
    await createApi(ok).deleteAlertRule('abc', 'tok');
    expect(ok.mock.calls[0]![0]).toBe('/api/v1/alerts/rules/abc');
    expect(ok.mock.calls[0]![1]?.method).toBe('DELETE');
    const missing = vi.fn(async () =>
      jsonResponse({ code: 'unknown_alert_rule', detail: 'no alert rule abc' }, 404)
    );
    const error = await createApi(missing)
      .deleteAlertRule('abc', 'tok')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe('unknown_alert_rule');
  });

  it('asks for firing alerts and for a test send', async () => {
    const fetch = vi.fn(async (url: string) =>
      jsonResponse(
        url.endsWith('/test') ? { items: [{ target_id: 't', target: 'x', error: 'HTTP 500' }] } : alertsBody
      )
    );
    const api = createApi(fetch);
    expect((await api.alerts('firing', 'tok')).firing).toBe(1);
    expect(fetch.mock.calls[0]![0]).toBe('/api/v1/alerts?state=firing&limit=100');
    expect(await api.testAlertRule('abc', 'tok')).toEqual([
      { target_id: 't', target: 'x', error: 'HTTP 500' }
    ]);
  });
});

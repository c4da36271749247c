import { describe, expect, it } from 'vitest';
import { clientDetail, clientSummary } from '$lib/testing/fixtures';
import {
  clientDetailSchema,
  clientListSchema,
  clientPageSchema,
  eventPageSchema,
  fleetSummarySchema,
  liveModelSchema,
  serverInfoSchema,
  uptimeSchema
} from './schemas';

describe('response schemas', () => {
  it('accepts a client list and strips fields it does not know', () => {
    const parsed = clientListSchema.parse({ items: [{ ...clientSummary(), future_field: 1 }], extra: true });
    expect(parsed.items[0]?.hostname).toBe('gpu-01.lab');
    expect(parsed.items[0]).not.toHaveProperty('future_field');
  });

  it('accepts a page of clients; counts by status default to zero', () => {
    const parsed = clientPageSchema.parse({
      items: [clientSummary()],
      next_cursor: null,
      matched: 1,
      total: 7,
      counts: { online: 1, offline: 6 }
    });
    expect(parsed.counts).toEqual({
      online: 1,
      degraded: 0,
      offline: 6,
      stopped: 0,
      unknown: 0,
      decommissioned: 0
    });
    const bad = clientPageSchema.safeParse({ items: [], next_cursor: 3, matched: 0, total: 0, counts: {} });
    expect(bad.error?.issues[0]?.path).toEqual(['next_cursor']);
    const negative = fleetSummarySchema.safeParse({ total: 1, counts: { online: -1 }, labels: [] });
    expect(negative.error?.issues[0]?.path).toEqual(['counts', 'online']);
  });

  it('accepts a client detail with null optional facts', () => {
    const detail = clientDetail({ last_seen: null, uptime_24h: null, clock_skew_ms: null, session_id: null });
    detail.models[0] = { ...detail.models[0]!, family: null, quantization: null, modified_at: null };
    expect(clientDetailSchema.safeParse(detail).success).toBe(true);
  });

  it('rejects an unknown status and names the field', () => {
    const result = clientListSchema.safeParse({ items: [clientSummary({ status: 'sleeping' as never })] });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['items', 0, 'status']);
  });

  it('rejects a time that is not ISO-8601', () => {
    const result = clientListSchema.safeParse({ items: [clientSummary({ last_seen: 'yesterday' })] });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['items', 0, 'last_seen']);
  });

  it('rejects uptime_24h outside 0..1', () => {
    expect(clientListSchema.safeParse({ items: [clientSummary({ uptime_24h: 99.5 })] }).success).toBe(false);
  });

  it('accepts uptime with an open interval', () => {
    const uptime = {
      bucket: 'hour',
      from: '2026-11-26T12:00:00Z',
      to: '2026-11-27T12:00:00Z',
      items: [
        {
          start: '2026-11-27T11:00:00Z',
          end: '2026-11-27T12:00:00Z',
          up_s: 3000,
          degraded_s: 0,
          down_s: 600,
          unknown_s: 0
        }
      ],
      intervals: [{ status: 'offline', start: '2026-11-27T11:50:00Z', end: null }]
    };
    expect(uptimeSchema.parse(uptime).intervals[0]?.end).toBeNull();
  });

  it('accepts an event page at the head of the log', () => {
    const page = {
      items: [
        {
          position: 1,
          id: 'e1',
          stream: 'client-gpu-01',
          version: 1,
          type: 'ClientRegistered',
          schema_version: 1,
          data: { hostname: 'gpu-01' },
          metadata: {},
          recorded_at: '2026-11-27T12:00:00.123456+00:00'
        }
      ],
      next_after: null
    };
    expect(eventPageSchema.parse(page).next_after).toBeNull();
    // A server from before backward paging sends no next_before: no older page.
    expect(eventPageSchema.parse(page).next_before).toBeNull();
    expect(eventPageSchema.parse({ ...page, next_before: 1 }).next_before).toBe(1);
    expect(eventPageSchema.safeParse({ ...page, next_before: 'older' }).success).toBe(false);
  });

  it('tells a removed model apart from an availability update', () => {
    expect(liveModelSchema.parse({ name: 'x', removed: true })).toEqual({ name: 'x', removed: true });
    expect(liveModelSchema.safeParse({ name: 'x' }).success).toBe(false);
  });

  it('requires the enrollment hint and agent command in /info', () => {
    const info = {
      version: '0.1.0',
      server_time: '2026-11-27T12:00:00Z',
      heartbeat_interval_s: 10,
      timeout_s: 30,
      store: 'sqlite'
    };
    expect(serverInfoSchema.safeParse(info).success).toBe(false);
    expect(
      serverInfoSchema.safeParse({ ...info, enrollment_token_hint: 'data dir', agent_command: 'obt-agent' })
        .success
    ).toBe(true);
  });
});

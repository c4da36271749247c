import { describe, expect, it, vi } from 'vitest';
import { createApi } from '$lib/api/client';
import type { AuditEvent } from '$lib/api/schemas';
import { compactedStorage, jsonResponse } from '$lib/testing/fixtures';
import { RANGES_SHOWN, archivedRanges, loadStorage } from './storage';

function event(position: number, type: string, data: Record<string, unknown>): AuditEvent {
  return {
    position,
    id: `e-${position}`,
    stream: 'system',
    version: position,
    type,
    schema_version: 1,
    data,
    metadata: {},
    recorded_at: `2026-11-${String(position).padStart(2, '0')}T03:00:00+00:00`
  };
}

const compacted = (position: number, first: number, last: number, removed: number) =>
  event(position, 'LogCompacted', {
    first_position: first,
    last_position: last,
    removed,
    segment_id: `0000000${position}-${String(first).padStart(12, '0')}`,
    segment_sha256: 'ab'.repeat(32)
  });

const STORAGE = compactedStorage();

describe('archivedRanges', () => {
  it('lists each compaction newest first and skips other events and bad payloads', () => {
    const ranges = archivedRanges([
      compacted(9, 3, 12, 40),
      event(10, 'ServerStarted', { version: '1' }),
      event(11, 'LogCompacted', { first_position: 'x' }),
      compacted(28, 14, 25, 30)
    ]);
    expect(ranges.map((r) => [r.position, r.first_position, r.last_position, r.removed])).toEqual([
      [28, 14, 25, 30],
      [9, 3, 12, 40]
    ]);
    expect(ranges[1]).toMatchObject({ segment_id: '00000009-000000000003', at: '2026-11-09T03:00:00+00:00' });
  });
});

describe('loadStorage', () => {
  it('reads /storage and the newest LogCompacted events of the system stream', async () => {
    const fetch = vi.fn(async (url: string, _init?: RequestInit) =>
      url.startsWith('/api/v1/storage')
        ? jsonResponse(STORAGE)
        : jsonResponse({
            items: [compacted(9, 3, 12, 40), compacted(28, 14, 25, 30)],
            next_after: null,
            next_before: 9
          })
    );
    const view = await loadStorage(createApi(fetch));
    const urls = fetch.mock.calls.map((call) => call[0]);
    expect(urls).toContain('/api/v1/storage');
    expect(urls).toContain(
      `/api/v1/events?stream=system&type=LogCompacted&before=${Number.MAX_SAFE_INTEGER}&limit=${RANGES_SHOWN}`
    );
    expect(view.storage).toEqual(STORAGE);
    expect(view.ranges.map((r) => r.position)).toEqual([28, 9]);
    expect(view.more).toBe(true);
  });
});

// The storage panel's data: GET /storage, and the archived ranges read from the `LogCompacted`
// events on the system stream (one per compaction: the positions it moved into which segment).
import { z } from 'zod';
import type { Api } from '$lib/api/client';
import type { AuditEvent, Storage } from '$lib/api/schemas';
import { NEWEST } from './filters';

/** How many compactions the panel lists, newest first (one a day by default: about 3 months). */
export const RANGES_SHOWN = 100;

export interface ArchivedRange {
  /** The position of the LogCompacted event that recorded the move. */
  position: number;
  at: string;
  first_position: number;
  last_position: number;
  removed: number;
  segment_id: string;
}

const compactedSchema = z.object({
  first_position: z.number().int(),
  last_position: z.number().int(),
  removed: z.number().int(),
  segment_id: z.string()
});

/** The archived ranges among these events, newest first; other events and bad payloads are skipped. */
export function archivedRanges(events: readonly AuditEvent[]): ArchivedRange[] {
  const ranges: ArchivedRange[] = [];
  for (const event of events) {
    if (event.type !== 'LogCompacted') continue;
    const data = compactedSchema.safeParse(event.data);
    if (!data.success) continue;
    ranges.push({ position: event.position, at: event.recorded_at, ...data.data });
  }
  return ranges.sort((a, b) => b.position - a.position);
}

export interface StorageView {
  storage: Storage;
  ranges: ArchivedRange[];
  /** More compactions were recorded than the panel lists. */
  more: boolean;
}

export async function loadStorage(
  api: Pick<Api, 'storage' | 'events'>,
  signal?: AbortSignal
): Promise<StorageView> {
  const [storage, page] = await Promise.all([
    api.storage(signal),
    api.events({ stream: 'system', types: ['LogCompacted'], before: NEWEST, limit: RANGES_SHOWN }, signal)
  ]);
  return { storage, ranges: archivedRanges(page.items), more: page.next_before !== null };
}

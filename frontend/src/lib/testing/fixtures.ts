// Builders for API payloads in tests: valid by default, override what a test cares about.
import type {
  ClientDetail,
  ClientSummary,
  ModelAvailability,
  Storage,
  TimelineEntry
} from '$lib/api/schemas';

export function clientSummary(overrides: Partial<ClientSummary> = {}): ClientSummary {
  return {
    client_id: 'gpu-01',
    hostname: 'gpu-01.lab',
    status: 'online',
    status_since: '2026-11-27T10:00:00Z',
    last_seen: '2026-11-27T12:00:00Z',
    registered_at: '2026-11-01T00:00:00+00:00',
    platform: { system: 'Linux', release: '6.8.0', machine: 'x86_64' },
    agent_version: '0.1.0',
    labels: {},
    ollama: { reachable: true, version: '0.9.3', error: null, latency_ms: 4 },
    models_count: 2,
    loaded_count: 1,
    uptime_24h: 0.999,
    clock_skew_ms: 12,
    session_id: 'c0ffee00-0000-4000-8000-000000000001',
    position: 10,
    transport: 'channel',
    connected_since: '2026-11-27T09:00:00Z',
    connection_lost: false,
    reconnects_24h: 0,
    last_disconnect: null,
    ...overrides
  };
}

export function clientDetail(overrides: Partial<ClientDetail> = {}): ClientDetail {
  return {
    ...clientSummary(),
    models: [
      {
        name: 'llama3.1:8b',
        digest: 'sha256:42182419e950',
        size: 4_920_753_328,
        family: 'llama',
        parameter_size: '8.0B',
        quantization: 'Q4_K_M',
        modified_at: '2026-11-20T08:00:00Z'
      }
    ],
    loaded: [
      {
        name: 'llama3.1:8b',
        digest: 'sha256:42182419e950',
        size: 5_500_000_000,
        size_vram: 5_500_000_000,
        expires_at: '2026-11-27T12:05:00Z',
        context_length: 4096
      }
    ],
    ...overrides
  };
}

export function timelineEntry(position: number, overrides: Partial<TimelineEntry> = {}): TimelineEntry {
  return {
    position,
    at: new Date(Date.UTC(2026, 10, 27, 12, 0, position)).toISOString(),
    client_id: 'gpu-01',
    type: 'ModelAdded',
    summary: `entry ${position}`,
    ...overrides
  };
}

export function modelAvailability(
  name: string,
  hosts: [client: string, digest: string, loaded?: boolean][]
): ModelAvailability {
  const digests = [...new Set(hosts.map(([, d]) => d))].sort();
  return {
    name,
    hosts: hosts.map(([client_id, digest, loaded = false]) => ({
      client_id,
      hostname: `${client_id}.lab`,
      digest,
      size: 1000,
      loaded,
      size_vram: loaded ? 1000 : null,
      expires_at: null
    })),
    digests,
    drift: digests.length > 1,
    installed_count: hosts.length,
    loaded_count: hosts.filter(([, , l]) => l).length
  };
}

/** GET /storage of a log never compacted, its sizes not measured yet. */
export function freshStorage(head = 12): Storage {
  return {
    log: { bytes: null, head },
    archive: {
      bytes: null,
      segments: 0,
      events: 0,
      first_position: null,
      last_position: null,
      last_recorded_at: null
    },
    retention_s: 14 * 86400,
    last_compaction: null
  };
}

/** GET /storage after two compactions (positions 3-190,000 archived, the last one 80,000 events). */
export function compactedStorage(): Storage {
  return {
    log: { bytes: 5_400_000, head: 250_000 },
    archive: {
      bytes: 1_200_000,
      segments: 2,
      events: 180_000,
      first_position: 3,
      last_position: 190_000,
      last_recorded_at: '2026-11-14T09:00:00+00:00'
    },
    retention_s: 14 * 86400,
    last_compaction: { at: '2026-11-28T09:00:00+00:00', segment_id: '00000002-000000100000', removed: 80_000 }
  };
}

/** A Response with a JSON body. */
export const jsonResponse = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

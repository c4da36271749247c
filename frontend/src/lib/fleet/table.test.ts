import { describe, expect, it } from 'vitest';
import { clientSummary } from '$lib/testing/fixtures';
import {
  applyQuery,
  compareVersions,
  countByStatus,
  DEFAULT_QUERY,
  labelOptions,
  type TableQuery
} from './table';

const fleet = [
  clientSummary({
    client_id: 'a',
    hostname: 'alpha',
    status: 'online',
    labels: { env: 'prod' },
    uptime_24h: 0.99,
    last_seen: '2026-11-27T12:00:00Z'
  }),
  clientSummary({
    client_id: 'b',
    hostname: 'bravo',
    status: 'offline',
    labels: { env: 'lab' },
    uptime_24h: 0.5,
    last_seen: '2026-11-27T11:00:00Z',
    ollama: { reachable: false, version: '0.10.1', error: null, latency_ms: null }
  }),
  clientSummary({
    client_id: 'c',
    hostname: 'charlie',
    status: 'degraded',
    labels: { env: 'prod', gpu: 'a100' },
    uptime_24h: null,
    last_seen: null,
    models_count: 7
  }),
  clientSummary({
    client_id: 'd',
    hostname: 'delta',
    status: 'online',
    labels: {},
    uptime_24h: 1,
    last_seen: '2026-11-27T11:59:00Z',
    ollama: { reachable: true, version: '0.5.7', error: null, latency_ms: 1 }
  })
];
const q = (overrides: Partial<TableQuery>): TableQuery => ({ ...DEFAULT_QUERY, ...overrides });
const hosts = (query: Partial<TableQuery>) => applyQuery(fleet, q(query)).map((c) => c.hostname);

describe('clients table query', () => {
  it('sorts worst status first by default, then by hostname', () => {
    expect(hosts({})).toEqual(['bravo', 'charlie', 'alpha', 'delta']);
  });

  it('filters by status', () => {
    expect(hosts({ statuses: ['online'] })).toEqual(['alpha', 'delta']);
  });

  it('filters by every chosen label', () => {
    expect(hosts({ labels: ['env=prod'] })).toEqual(['charlie', 'alpha']);
    expect(hosts({ labels: ['env=prod', 'gpu=a100'] })).toEqual(['charlie']);
  });

  it('searches hostname, labels and versions, all terms required', () => {
    expect(hosts({ search: 'BRA' })).toEqual(['bravo']);
    expect(hosts({ search: 'gpu=a100' })).toEqual(['charlie']);
    expect(hosts({ search: '0.5.7' })).toEqual(['delta']);
    expect(hosts({ search: 'prod charlie' })).toEqual(['charlie']);
    expect(hosts({ search: 'prod zulu' })).toEqual([]);
  });

  it('sorts by hostname both ways', () => {
    expect(hosts({ sort: 'hostname' })).toEqual(['alpha', 'bravo', 'charlie', 'delta']);
    expect(hosts({ sort: 'hostname', direction: 'desc' })).toEqual(['delta', 'charlie', 'bravo', 'alpha']);
  });

  it('sorts by last seen, most recent first, never-seen last', () => {
    expect(hosts({ sort: 'last_seen' })).toEqual(['alpha', 'delta', 'bravo', 'charlie']);
  });

  it('sorts by uptime with unknown uptime lowest', () => {
    expect(hosts({ sort: 'uptime' })).toEqual(['charlie', 'bravo', 'alpha', 'delta']);
  });

  it('sorts Ollama versions numerically', () => {
    expect(hosts({ sort: 'version' })).toEqual(['delta', 'alpha', 'charlie', 'bravo']);
    expect(compareVersions('0.10.1', '0.9.3')).toBeGreaterThan(0);
    expect(compareVersions(null, '0.1')).toBeLessThan(0);
  });

  it('does not mutate its input', () => {
    const before = fleet.map((c) => c.client_id);
    applyQuery(fleet, q({ sort: 'hostname', direction: 'desc' }));
    expect(fleet.map((c) => c.client_id)).toEqual(before);
  });

  it('filters a 1,000-client fleet', () => {
    const many = Array.from({ length: 1000 }, (_, i) =>
      clientSummary({ client_id: `h${i}`, hostname: `host-${i}`, status: i % 7 === 0 ? 'offline' : 'online' })
    );
    expect(applyQuery(many, q({ search: 'host-99' }))).toHaveLength(11);
    expect(applyQuery(many, q({ statuses: ['offline'] }))).toHaveLength(143);
  });
});

describe('fleet summaries', () => {
  it('counts clients by status', () => {
    expect(countByStatus(fleet)).toEqual({
      online: 2,
      degraded: 1,
      offline: 1,
      stopped: 0,
      unknown: 0,
      decommissioned: 0
    });
  });

  it('lists distinct labels sorted', () => {
    expect(labelOptions(fleet)).toEqual(['env=lab', 'env=prod', 'gpu=a100']);
  });
});

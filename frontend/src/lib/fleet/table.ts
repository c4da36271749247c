// Search, filter and sort for the fleet's clients table: pure functions over ClientSummary.
import type { ClientSummary, Status } from '$lib/api/schemas';
import { STATUS_ORDER } from '$lib/status';

export type SortKey = 'status' | 'hostname' | 'last_seen' | 'version' | 'models' | 'loaded' | 'uptime';
export type SortDirection = 'asc' | 'desc';

export interface TableQuery {
  search: string;
  /** Empty means every status. */
  statuses: readonly Status[];
  /** `key=value` strings; a client must carry all of them. */
  labels: readonly string[];
  sort: SortKey;
  direction: SortDirection;
}

export const DEFAULT_QUERY: TableQuery = {
  search: '',
  statuses: [],
  labels: [],
  sort: 'status',
  direction: 'asc'
};

export const labelKey = (key: string, value: string) => `${key}=${value}`;

/** Lower-cased text a search term is matched against: hostname, id, labels, versions, platform. */
function searchText(client: ClientSummary): string {
  const labels = Object.entries(client.labels).map(([k, v]) => labelKey(k, v));
  return [
    client.hostname,
    client.client_id,
    client.ollama.version ?? '',
    client.agent_version,
    client.platform.system,
    client.platform.machine,
    ...labels
  ]
    .join(' ')
    .toLowerCase();
}

export function matches(client: ClientSummary, query: TableQuery): boolean {
  if (query.statuses.length > 0 && !query.statuses.includes(client.status)) return false;
  for (const label of query.labels) {
    const eq = label.indexOf('=');
    const key = label.slice(0, eq);
    if (client.labels[key] !== label.slice(eq + 1)) return false;
  }
  const terms = query.search.trim().toLowerCase().split(/\s+/).filter(Boolean);
  if (terms.length === 0) return true;
  const text = searchText(client);
  return terms.every((term) => text.includes(term));
}

const statusRank = new Map(STATUS_ORDER.map((status, index) => [status, index]));

/** Compares dotted versions numerically ("0.10.1" > "0.9.3"); missing versions sort first. */
export function compareVersions(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  const pa = a.split(/[.-]/);
  const pb = b.split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const nx = Number(x);
    const ny = Number(y);
    const diff =
      !Number.isNaN(nx) && !Number.isNaN(ny) && x !== '' && y !== '' ? nx - ny : x.localeCompare(y);
    if (diff !== 0) return diff;
  }
  return 0;
}

const nullsLow = (value: number | null) => (value === null ? -Infinity : value);
const lastSeenMs = (client: ClientSummary) => (client.last_seen ? Date.parse(client.last_seen) : null);

const comparators: Record<SortKey, (a: ClientSummary, b: ClientSummary) => number> = {
  status: (a, b) => (statusRank.get(a.status) ?? 99) - (statusRank.get(b.status) ?? 99),
  hostname: (a, b) => a.hostname.localeCompare(b.hostname),
  // Ascending "last seen" means most recent first, as "12 s ago" < "5 min ago".
  last_seen: (a, b) => nullsLow(lastSeenMs(b)) - nullsLow(lastSeenMs(a)),
  version: (a, b) => compareVersions(a.ollama.version, b.ollama.version),
  models: (a, b) => a.models_count - b.models_count,
  loaded: (a, b) => a.loaded_count - b.loaded_count,
  uptime: (a, b) => nullsLow(a.uptime_24h) - nullsLow(b.uptime_24h)
};

/** Filters then sorts; ties fall back to hostname so the order is stable across updates. */
export function applyQuery(clients: readonly ClientSummary[], query: TableQuery): ClientSummary[] {
  const compare = comparators[query.sort];
  const sign = query.direction === 'asc' ? 1 : -1;
  return clients
    .filter((client) => matches(client, query))
    .sort(
      (a, b) =>
        sign * compare(a, b) || a.hostname.localeCompare(b.hostname) || a.client_id.localeCompare(b.client_id)
    );
}

export function countByStatus(clients: readonly ClientSummary[]): Record<Status, number> {
  const counts: Record<Status, number> = {
    online: 0,
    degraded: 0,
    offline: 0,
    stopped: 0,
    unknown: 0,
    decommissioned: 0
  };
  for (const client of clients) counts[client.status] += 1;
  return counts;
}

/** Every `key=value` label in the fleet, sorted, for the label filter. */
export function labelOptions(clients: readonly ClientSummary[]): string[] {
  const set = new Set<string>();
  for (const client of clients) {
    for (const [key, value] of Object.entries(client.labels)) set.add(labelKey(key, value));
  }
  return [...set].sort();
}

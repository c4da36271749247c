// The fleet table's query (search, filters, sort) and how it maps onto GET /clients: sorting,
// filtering and paging happen on the server, so the page holds only the rows in view.
import type { ClientPageQuery } from '$lib/api/client';
import type { Status } from '$lib/api/schemas';

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

export const PAGE_SIZE = 100;

export const labelKey = (key: string, value: string) => `${key}=${value}`;

/** The server's sort field for each column. */
const SORT_FIELD: Record<SortKey, string> = {
  status: 'status',
  hostname: 'hostname',
  last_seen: 'last_seen',
  version: 'ollama_version',
  models: 'models_count',
  loaded: 'loaded_count',
  uptime: 'uptime_24h'
};

/** The request for one page. "Last seen" ascending reads as "12 s ago" before "5 min ago",
 * i.e. the newest time first, so that column's order is the server's reversed. */
export function pageRequest(
  query: TableQuery,
  cursor: string | null = null,
  limit = PAGE_SIZE
): ClientPageQuery {
  const newestFirst = query.sort === 'last_seen';
  const order = (query.direction === 'asc') !== newestFirst ? 'asc' : 'desc';
  return {
    sort: SORT_FIELD[query.sort],
    order,
    statuses: query.statuses,
    labels: query.labels,
    search: query.search.trim(),
    limit,
    cursor
  };
}

/** Two queries that ask the server for the same rows (so a change starts over at page 1). */
export function sameQuery(a: TableQuery, b: TableQuery): boolean {
  return (
    a.search.trim() === b.search.trim() &&
    a.sort === b.sort &&
    a.direction === b.direction &&
    a.statuses.join(',') === b.statuses.join(',') &&
    a.labels.join(',') === b.labels.join(',')
  );
}

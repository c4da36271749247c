// The audit page's filters, kept in the URL so a filtered view can be shared or bookmarked.
import type { EventQuery } from '$lib/api/client';

export const EVENT_TYPES = [
  'ClientRegistered',
  'ClientReregistered',
  'HeartbeatReceived',
  'OllamaBecameUnavailable',
  'OllamaBecameAvailable',
  'ModelAdded',
  'ModelRemoved',
  'ModelChanged',
  'ModelLoaded',
  'ModelUnloaded',
  'ClientTimedOut',
  'ClientRecovered',
  'ClientDeregistered',
  'ClientDecommissioned',
  'ServerStarted',
  'ServerStopped',
  'LogCompacted'
] as const;

export interface AuditFilters {
  /** A client id, `system`, or empty for every stream. */
  client: string;
  types: string[];
  /** ISO-8601 bounds on recorded_at, or empty. */
  from: string;
  to: string;
  /** Leave out HeartbeatReceived (every agent sends one every 10 s) unless types are chosen. */
  hideHeartbeats: boolean;
  /** Read the archive too (events compaction moved out of the live log), merged by position. */
  includeArchived: boolean;
  /**
   * Position cursors, at most one set: `after` lists the newer events after it, `before` the
   * older events before it. Neither: the newest page.
   */
  after: number | null;
  before: number | null;
}

/** Larger than any position: `before` this reads the newest page of the log. */
export const NEWEST = Number.MAX_SAFE_INTEGER;

function cursor(params: URLSearchParams, name: string): number | null {
  const value = Number(params.get(name));
  return params.has(name) && Number.isInteger(value) && value > 0 && value <= NEWEST ? value : null;
}

export const streamFor = (client: string): string | null =>
  client === '' ? null : client === 'system' ? 'system' : `client-${client}`;

export function filtersFromParams(params: URLSearchParams): AuditFilters {
  // A hand-made URL with both cursors pages backwards: the server takes only one.
  const before = cursor(params, 'before');
  return {
    client: params.get('client') ?? '',
    types: (params.get('type') ?? '').split(',').filter(Boolean),
    from: params.get('from') ?? '',
    to: params.get('to') ?? '',
    hideHeartbeats: params.get('heartbeats') === 'hide',
    includeArchived: params.get('archived') === 'include',
    after: before === null ? cursor(params, 'after') : null,
    before
  };
}

export function filtersToParams(filters: AuditFilters): URLSearchParams {
  const params = new URLSearchParams();
  if (filters.client) params.set('client', filters.client);
  if (filters.types.length) params.set('type', filters.types.join(','));
  if (filters.from) params.set('from', filters.from);
  if (filters.to) params.set('to', filters.to);
  if (filters.hideHeartbeats) params.set('heartbeats', 'hide');
  if (filters.includeArchived) params.set('archived', 'include');
  if (filters.after !== null) params.set('after', String(filters.after));
  else if (filters.before !== null) params.set('before', String(filters.before));
  return params;
}

/** The types to ask for: the chosen ones, else everything but heartbeats when hidden, else all. */
export function typesFor(filters: AuditFilters): string[] {
  if (filters.types.length > 0) return filters.types;
  return filters.hideHeartbeats ? EVENT_TYPES.filter((t) => t !== 'HeartbeatReceived') : [];
}

export function toEventQuery(filters: AuditFilters, limit: number): EventQuery {
  return {
    stream: streamFor(filters.client),
    types: typesFor(filters),
    from: filters.from || null,
    to: filters.to || null,
    after: filters.after,
    before: filters.after === null ? (filters.before ?? NEWEST) : null,
    limit,
    includeArchived: filters.includeArchived
  };
}

// The one way the dashboard talks to the OBT server: builds /api/v1 URLs, validates each
// response with its zod schema and turns failures into typed errors (see ./errors).
import type { z } from 'zod';
import { ApiError, NetworkError, SchemaError } from './errors';
import {
  alertListSchema,
  alertRuleListSchema,
  alertRuleSchema,
  clientDetailSchema,
  clientListSchema,
  clientPageSchema,
  clientStateSchema,
  errorBodySchema,
  eventPageSchema,
  fleetStateSchema,
  fleetSummarySchema,
  modelListSchema,
  modelPageSchema,
  operationCancelledSchema,
  operationCreatedSchema,
  operationListSchema,
  operationSchema,
  serverInfoSchema,
  storageSchema,
  testSendSchema,
  timelinePageSchema,
  uptimeSchema
} from './schemas';

export const API_BASE = '/api/v1';

type Query = Record<string, string | number | readonly string[] | null | undefined>;

/** GET /clients sorted, filtered and paged on the server (docs/api-shapes.md). */
export interface ClientPageQuery {
  sort?: string;
  order?: 'asc' | 'desc';
  statuses?: readonly string[];
  /** `key=value`; every one must match. */
  labels?: readonly string[];
  search?: string;
  limit: number;
  cursor?: string | null;
}

export interface EventQuery {
  stream?: string | null;
  types?: readonly string[];
  /** Exclusive cursors, at most one: the page after `after`, or the page before `before`. */
  after?: number | null;
  before?: number | null;
  limit?: number;
  from?: string | null;
  to?: string | null;
  /** Merge the archive's events (moved out by compaction) into the answer, in position order. */
  includeArchived?: boolean;
}

/** Builds `/api/v1/<path>?<query>`, dropping empty values and repeating array values. */
export function apiUrl(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === null || value === undefined || value === '') continue;
    if (Array.isArray(value)) {
      for (const item of value) params.append(key, item);
    } else {
      params.set(key, String(value));
    }
  }
  const search = params.toString();
  return `${API_BASE}${path}${search ? `?${search}` : ''}`;
}

function firstIssue(error: z.ZodError): { field: string; issue: string } {
  const issue = error.issues[0];
  if (!issue) return { field: '', issue: 'invalid response' };
  return { field: issue.path.map(String).join('.'), issue: issue.message };
}

/** Validates `body` against `schema`, raising SchemaError that names the offending field. */
export function parseResponse<S extends z.ZodType>(schema: S, body: unknown, path: string): z.infer<S> {
  const result = schema.safeParse(body);
  if (!result.success) {
    const { field, issue } = firstIssue(result.error);
    throw new SchemaError(path, field, issue);
  }
  return result.data;
}

async function errorFromResponse(response: Response, path: string): Promise<ApiError> {
  let code = `http_${response.status}`;
  let detail = response.statusText || 'request failed';
  try {
    const parsed = errorBodySchema.safeParse(await response.json());
    if (parsed.success) {
      code = parsed.data.code;
      detail =
        typeof parsed.data.detail === 'string' ? parsed.data.detail : JSON.stringify(parsed.data.detail);
    }
  } catch {
    // Not JSON (a proxy page, an empty body): keep the status text.
  }
  return new ApiError(response.status, code, detail, path);
}

/** POST /operations: hosts by id (a delete needs them) or by labels. */
export interface OperationRequest {
  action: 'pull' | 'delete';
  model: string;
  targets: { client_ids: string[] } | { labels: Record<string, string> };
  max_parallel?: number;
  expires_in_s?: number;
}

/** POST /alerts/rules and PUT /alerts/rules/{id}: the whole rule (a webhook without `secret`
 * keeps the stored one of the same url). */
export interface AlertRuleRequest {
  name: string;
  scope: { client_ids: string[]; labels: Record<string, string> };
  condition:
    | { kind: 'status'; statuses: string[]; for_s: number }
    | { kind: 'model_missing'; model: string; for_s: number }
    | { kind: 'digest_drift'; model: string | null; for_s: number };
  notify: { urls: string[]; webhooks: { url: string; secret?: string }[] };
  send_resolved: boolean;
  remind_every_s: number | null;
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export function createApi(fetchImpl: FetchLike = (input, init) => fetch(input, init)) {
  async function get<S extends z.ZodType>(
    schema: S,
    path: string,
    query?: Query,
    signal?: AbortSignal,
    token?: string | null
  ): Promise<z.infer<S>> {
    return request(
      schema,
      path,
      { headers: authorized({ accept: 'application/json' }, token), signal },
      query
    );
  }

  /** POST (or PUT) `body` as JSON with the admin token. */
  async function post<S extends z.ZodType>(
    schema: S,
    path: string,
    body: unknown,
    token: string,
    method: 'POST' | 'PUT' = 'POST'
  ): Promise<z.infer<S>> {
    const headers = authorized({ accept: 'application/json', 'content-type': 'application/json' }, token);
    return request(schema, path, { method, headers, body: JSON.stringify(body) });
  }

  /** DELETE with the admin token; the answer has no body (204). */
  async function remove(path: string, token: string): Promise<void> {
    let response: Response;
    try {
      response = await fetchImpl(apiUrl(path), { method: 'DELETE', headers: authorized({}, token) });
    } catch (cause) {
      throw new NetworkError(path, cause);
    }
    if (!response.ok) throw await errorFromResponse(response, path);
  }

  async function request<S extends z.ZodType>(
    schema: S,
    path: string,
    init: RequestInit,
    query?: Query
  ): Promise<z.infer<S>> {
    const url = apiUrl(path, query);
    let response: Response;
    try {
      response = await fetchImpl(url, init);
    } catch (cause) {
      throw new NetworkError(path, cause);
    }
    if (!response.ok) throw await errorFromResponse(response, path);
    let body: unknown;
    try {
      body = await response.json();
    } catch {
      throw new SchemaError(path, '', 'the response is not JSON');
    }
    return parseResponse(schema, body, path);
  }

  const clientPath = (id: string) => `/clients/${encodeURIComponent(id)}`;
  const operationPath = (id: string) => `/operations/${encodeURIComponent(id)}`;
  const rulePath = (id: string) => `/alerts/rules/${encodeURIComponent(id)}`;

  return {
    info: (signal?: AbortSignal) => get(serverInfoSchema, '/info', {}, signal),
    clients: (signal?: AbortSignal) => get(clientListSchema, '/clients', {}, signal).then((r) => r.items),
    clientPage: (query: ClientPageQuery, signal?: AbortSignal) =>
      get(
        clientPageSchema,
        '/clients',
        {
          sort: query.sort,
          order: query.order,
          status: query.statuses && query.statuses.length > 0 ? query.statuses.join(',') : null,
          label: query.labels,
          q: query.search?.trim(),
          limit: query.limit,
          cursor: query.cursor
        },
        signal
      ),
    fleetSummary: (signal?: AbortSignal) => get(fleetSummarySchema, '/fleet/summary', {}, signal),
    client: (id: string, signal?: AbortSignal) => get(clientDetailSchema, clientPath(id), {}, signal),
    uptime: (id: string, bucket: 'hour' | 'day', signal?: AbortSignal) =>
      get(uptimeSchema, `${clientPath(id)}/uptime`, { bucket }, signal),
    clientTimeline: (id: string, before?: number | null, limit = 50, signal?: AbortSignal) =>
      get(timelinePageSchema, `${clientPath(id)}/timeline`, { before, limit }, signal),
    fleetTimeline: (before?: number | null, limit = 50, signal?: AbortSignal) =>
      get(timelinePageSchema, '/timeline', { before, limit }, signal),
    models: (signal?: AbortSignal) => get(modelListSchema, '/models', {}, signal).then((r) => r.items),
    modelPage: (hostsLimit: number, hostsCursor?: string | null, signal?: AbortSignal) =>
      get(modelPageSchema, '/models', { hosts_limit: hostsLimit, hosts_cursor: hostsCursor }, signal),
    events: (query: EventQuery, signal?: AbortSignal) =>
      get(eventPageSchema, '/events', eventQuery(query), signal),
    storage: (signal?: AbortSignal) => get(storageSchema, '/storage', {}, signal),
    clientState: (id: string, at: string, signal?: AbortSignal) =>
      get(clientStateSchema, `${clientPath(id)}/state`, { at }, signal),
    fleetState: (at: string, signal?: AbortSignal) => get(fleetStateSchema, '/fleet/state', { at }, signal),
    operations: (token: string, signal?: AbortSignal) =>
      get(operationListSchema, '/operations', {}, signal, token).then((r) => r.items),
    operation: (id: string, token: string, signal?: AbortSignal) =>
      get(operationSchema, operationPath(id), {}, signal, token),
    requestOperation: (body: OperationRequest, token: string) =>
      post(operationCreatedSchema, '/operations', body, token),
    cancelOperation: (id: string, token: string) =>
      post(operationCancelledSchema, `${operationPath(id)}/cancel`, {}, token),
    alertRules: (token: string, signal?: AbortSignal) =>
      get(alertRuleListSchema, '/alerts/rules', {}, signal, token).then((r) => r.items),
    createAlertRule: (body: AlertRuleRequest, token: string) =>
      post(alertRuleSchema, '/alerts/rules', body, token),
    updateAlertRule: (id: string, body: AlertRuleRequest, token: string) =>
      post(alertRuleSchema, rulePath(id), body, token, 'PUT'),
    deleteAlertRule: (id: string, token: string) => remove(rulePath(id), token),
    testAlertRule: (id: string, token: string) =>
      post(testSendSchema, `${rulePath(id)}/test`, {}, token).then((r) => r.items),
    alerts: (state: 'firing' | 'all', token: string, signal?: AbortSignal, limit = 100) =>
      get(alertListSchema, '/alerts', { state, limit }, signal, token)
  };
}

export type Api = ReturnType<typeof createApi>;

function authorized(headers: Record<string, string>, token?: string | null): Record<string, string> {
  return token ? { ...headers, authorization: `Bearer ${token}` } : headers;
}

function eventQuery(query: EventQuery): Query {
  return {
    stream: query.stream,
    type: query.types && query.types.length > 0 ? query.types.join(',') : null,
    after: query.after,
    before: query.before,
    limit: query.limit,
    from: query.from,
    to: query.to,
    include_archived: query.includeArchived ? 'true' : null
  };
}

/** The NDJSON export link for the same filters as the event list; paging is dropped. */
export function exportUrl(query: EventQuery): string {
  return apiUrl('/events/export', eventQuery({ ...query, after: null, before: null, limit: undefined }));
}

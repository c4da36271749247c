// Zod schemas for every /api/v1 response the dashboard reads (docs/api-shapes.md).
// Unknown keys are stripped, so the server may add fields without breaking the dashboard.
import { z } from 'zod';

export const STATUSES = ['online', 'degraded', 'offline', 'stopped', 'unknown', 'decommissioned'] as const;
export const statusSchema = z.enum(STATUSES);
export type Status = z.infer<typeof statusSchema>;

/** An ISO-8601 time string; kept as a string so it round-trips unchanged into queries. */
export const isoTime = z
  .string()
  .refine((value) => /^\d{4}-\d\d-\d\dT/.test(value) && !Number.isNaN(Date.parse(value)), {
    message: 'expected an ISO-8601 time'
  });

export const errorBodySchema = z.object({ code: z.string(), detail: z.unknown() });

export const platformSchema = z.object({ system: z.string(), release: z.string(), machine: z.string() });

export const ollamaStateSchema = z.object({
  reachable: z.boolean(),
  version: z.string().nullable(),
  error: z.string().nullable(),
  latency_ms: z.number().nullable()
});

export const CHANNEL_END_REASONS = ['clean', 'error', 'replaced', 'server_stopping', 'idle'] as const;
export const channelEndSchema = z.object({ at: isoTime, reason: z.enum(CHANNEL_END_REASONS) });
export type ChannelEnd = z.infer<typeof channelEndSchema>;

export const clientSummarySchema = z.object({
  client_id: z.string(),
  hostname: z.string(),
  status: statusSchema,
  status_since: isoTime,
  last_seen: isoTime.nullable(),
  registered_at: isoTime,
  platform: platformSchema,
  agent_version: z.string(),
  labels: z.record(z.string(), z.string()),
  ollama: ollamaStateSchema,
  models_count: z.number().int().nonnegative(),
  loaded_count: z.number().int().nonnegative(),
  uptime_24h: z.number().min(0).max(1).nullable(),
  clock_skew_ms: z.number().nullable(),
  session_id: z.string().nullable(),
  position: z.number().int(),
  // The agent's connection (defaults for a server without the agent channel).
  transport: z.enum(['channel', 'http']).nullable().default(null),
  connected_since: isoTime.nullable().default(null),
  connection_lost: z.boolean().nullable().default(null),
  reconnects_24h: z.number().int().nonnegative().default(0),
  last_disconnect: channelEndSchema.nullable().default(null)
});
export type ClientSummary = z.infer<typeof clientSummarySchema>;

export const installedModelSchema = z.object({
  name: z.string(),
  digest: z.string(),
  size: z.number().nonnegative(),
  family: z.string().nullable(),
  parameter_size: z.string().nullable(),
  quantization: z.string().nullable(),
  modified_at: isoTime.nullable()
});
export type InstalledModel = z.infer<typeof installedModelSchema>;

export const loadedModelSchema = z.object({
  name: z.string(),
  digest: z.string().nullable(),
  size: z.number().nonnegative(),
  size_vram: z.number().nonnegative(),
  expires_at: isoTime.nullable(),
  context_length: z.number().int().nullable()
});
export type LoadedModel = z.infer<typeof loadedModelSchema>;

export const clientDetailSchema = clientSummarySchema.extend({
  models: z.array(installedModelSchema),
  loaded: z.array(loadedModelSchema)
});
export type ClientDetail = z.infer<typeof clientDetailSchema>;

export const clientListSchema = z.object({ items: z.array(clientSummarySchema) });

/** Clients by status across the whole fleet (every status present, zeros included). */
export const statusCountsSchema = z.object(
  Object.fromEntries(STATUSES.map((s) => [s, z.number().int().nonnegative().default(0)])) as Record<
    Status,
    z.ZodDefault<z.ZodNumber>
  >
);
export type StatusCounts = z.infer<typeof statusCountsSchema>;

/** A page of GET /clients?limit=..., sorted and filtered on the server. */
export const clientPageSchema = z.object({
  items: z.array(clientSummarySchema),
  next_cursor: z.string().nullable(),
  matched: z.number().int().nonnegative(),
  total: z.number().int().nonnegative(),
  counts: statusCountsSchema
});
export type ClientPage = z.infer<typeof clientPageSchema>;

export const fleetSummarySchema = z.object({
  total: z.number().int().nonnegative(),
  counts: statusCountsSchema,
  labels: z.array(z.string())
});
export type FleetSummary = z.infer<typeof fleetSummarySchema>;

export const uptimeBucketSchema = z.object({
  start: isoTime,
  end: isoTime,
  up_s: z.number().nonnegative(),
  degraded_s: z.number().nonnegative(),
  down_s: z.number().nonnegative(),
  unknown_s: z.number().nonnegative()
});
export type UptimeBucket = z.infer<typeof uptimeBucketSchema>;

export const uptimeSchema = z.object({
  bucket: z.enum(['hour', 'day']),
  from: isoTime,
  to: isoTime,
  items: z.array(uptimeBucketSchema),
  intervals: z.array(z.object({ status: statusSchema, start: isoTime, end: isoTime.nullable() }))
});
export type Uptime = z.infer<typeof uptimeSchema>;

export const timelineEntrySchema = z.object({
  position: z.number().int(),
  at: isoTime,
  client_id: z.string().nullable(),
  type: z.string(),
  summary: z.string()
});
export type TimelineEntry = z.infer<typeof timelineEntrySchema>;

export const timelinePageSchema = z.object({
  items: z.array(timelineEntrySchema),
  next_before: z.number().int().nullable()
});
export type TimelinePage = z.infer<typeof timelinePageSchema>;

export const modelHostSchema = z.object({
  client_id: z.string(),
  hostname: z.string(),
  digest: z.string(),
  size: z.number().nonnegative(),
  loaded: z.boolean(),
  size_vram: z.number().nonnegative().nullable(),
  expires_at: isoTime.nullable()
});
export type ModelHost = z.infer<typeof modelHostSchema>;

export const modelAvailabilitySchema = z.object({
  name: z.string(),
  hosts: z.array(modelHostSchema),
  digests: z.array(z.string()),
  drift: z.boolean(),
  installed_count: z.number().int().nonnegative(),
  loaded_count: z.number().int().nonnegative()
});
export type ModelAvailability = z.infer<typeof modelAvailabilitySchema>;

export const modelListSchema = z.object({ items: z.array(modelAvailabilitySchema) });

/** GET /models?hosts_limit=...: fleet-wide counts per model, hosts among one page of hosts. */
export const modelPageSchema = z.object({
  items: z.array(
    modelAvailabilitySchema.extend({
      hosts_count: z.number().int().nonnegative(),
      digest_counts: z.record(z.string(), z.number().int().nonnegative())
    })
  ),
  hosts: z.array(z.object({ client_id: z.string(), hostname: z.string() })),
  hosts_total: z.number().int().nonnegative(),
  next_hosts_cursor: z.string().nullable()
});
export type ModelPage = z.infer<typeof modelPageSchema>;

export const eventSchema = z.object({
  position: z.number().int(),
  id: z.string(),
  stream: z.string(),
  version: z.number().int(),
  type: z.string(),
  schema_version: z.number().int(),
  data: z.record(z.string(), z.unknown()),
  metadata: z.record(z.string(), z.unknown()),
  recorded_at: isoTime
});
export type AuditEvent = z.infer<typeof eventSchema>;

export const eventPageSchema = z.object({
  items: z.array(eventSchema),
  next_after: z.number().int().nullable(),
  // Servers before backward paging send no next_before: read that as "no older page".
  next_before: z.number().int().nullable().default(null)
});
export type EventPage = z.infer<typeof eventPageSchema>;

export const clientStateSchema = z.object({
  at: isoTime,
  position: z.number().int(),
  client: clientDetailSchema.nullable()
});
export type ClientState = z.infer<typeof clientStateSchema>;

export const fleetStateSchema = z.object({
  at: isoTime,
  position: z.number().int(),
  clients: z.array(clientDetailSchema)
});
export type FleetState = z.infer<typeof fleetStateSchema>;

export const serverInfoSchema = z.object({
  version: z.string(),
  server_time: isoTime,
  heartbeat_interval_s: z.number(),
  timeout_s: z.number(),
  store: z.string(),
  enrollment_token_hint: z.string(),
  agent_command: z.string()
});
export type ServerInfo = z.infer<typeof serverInfoSchema>;

/** GET /storage: the live log, the archive and the last compaction (docs/store.md). */
export const storageSchema = z.object({
  // Bytes are null until the server has measured them (or when the store cannot).
  log: z.object({ bytes: z.number().nullable(), head: z.number().int() }),
  archive: z.object({
    bytes: z.number().nullable(),
    segments: z.number().int(),
    events: z.number().int(),
    first_position: z.number().int().nullable(),
    last_position: z.number().int().nullable(),
    last_recorded_at: isoTime.nullable()
  }),
  retention_s: z.number(),
  last_compaction: z.object({ at: isoTime, segment_id: z.string(), removed: z.number().int() }).nullable()
});
export type Storage = z.infer<typeof storageSchema>;

/** SSE payloads on /live, keyed by the `event:` field. */
export const liveModelSchema = z.union([
  z.object({ name: z.string(), removed: z.literal(true) }),
  modelAvailabilitySchema
]);
export type LiveModel = z.infer<typeof liveModelSchema>;

// ---------------------------------------------------------------- fleet operations (admin)

export const OPERATION_ACTIONS = ['pull', 'delete'] as const;
export const TARGET_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'expired'] as const;
export type TargetState = (typeof TARGET_STATES)[number];

/** One host of an operation: its state and, while running, the agent's last progress. */
export const operationTargetSchema = z.object({
  client_id: z.string(),
  hostname: z.string().nullish(),
  state: z.enum(TARGET_STATES),
  status: z.string().nullish(),
  completed: z.number().nonnegative().nullish(),
  total: z.number().nonnegative().nullish(),
  reason: z.string().nullish()
});
export type OperationTarget = z.infer<typeof operationTargetSchema>;

/** The server's operation document: hosts keyed by client id (docs/api-shapes.md). */
const operationDocSchema = z.object({
  id: z.string(),
  action: z.enum(OPERATION_ACTIONS),
  model: z.string(),
  max_parallel: z.number().int().positive(),
  requested_at: isoTime.nullish(),
  expires_at: isoTime.nullish(),
  finished_at: isoTime.nullish(),
  targets: z.record(z.string(), operationTargetSchema.omit({ client_id: true }))
});

/** An operation as the pages use it: hosts as a list in client-id order, `finished` spelled out. */
export const operationSchema = operationDocSchema.transform(({ id, finished_at, targets, ...rest }) => ({
  ...rest,
  operation_id: id,
  finished: finished_at != null,
  targets: Object.entries(targets)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([client_id, target]) => ({ client_id, ...target }))
}));
export type Operation = z.infer<typeof operationSchema>;

export const operationListSchema = z.object({ items: z.array(operationSchema) });

/** The 202 answer to POST /operations. */
export const operationCreatedSchema = z.object({ operation_id: z.string(), targets: z.array(z.string()) });
export type OperationCreated = z.infer<typeof operationCreatedSchema>;

/** The answer to POST /operations/{id}/cancel. */
export const operationCancelledSchema = z.object({ operation_id: z.string() });

/** Alert rules and alerts (docs/api-shapes.md, alerts; docs/alerts.md). */
export const ALERT_STATUSES = ['offline', 'degraded', 'stopped'] as const;
export type AlertStatus = (typeof ALERT_STATUSES)[number];

export const alertConditionSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('status'), statuses: z.array(z.enum(ALERT_STATUSES)), for_s: z.number() }),
  z.object({ kind: z.literal('model_missing'), model: z.string(), for_s: z.number() }),
  z.object({ kind: z.literal('digest_drift'), model: z.string().nullable(), for_s: z.number() })
]);
export type AlertCondition = z.infer<typeof alertConditionSchema>;

export const alertRuleSchema = z.object({
  id: z.string(),
  name: z.string(),
  scope: z.object({
    client_ids: z.array(z.string()).default([]),
    labels: z.record(z.string(), z.string()).default({})
  }),
  condition: alertConditionSchema,
  // Webhook secrets never leave the server: a webhook shows only that it has one.
  notify: z.object({
    urls: z.array(z.string()).default([]),
    webhooks: z.array(z.object({ url: z.string(), has_secret: z.boolean() })).default([])
  }),
  send_resolved: z.boolean(),
  remind_every_s: z.number().nullable(),
  created_at: isoTime.nullish(),
  updated_at: isoTime.nullish(),
  position: z.number().int()
});
export type AlertRule = z.infer<typeof alertRuleSchema>;

export const alertRuleListSchema = z.object({ items: z.array(alertRuleSchema) });

export const NOTICE_STATES = ['pending', 'delivered', 'failed', 'none'] as const;

export const noticeDeliverySchema = z.object({
  target_id: z.string(),
  target: z.string(),
  state: z.string(),
  attempts: z.number().int(),
  last_error: z.string().nullish(),
  next_attempt_at: isoTime.nullish(),
  delivered_at: isoTime.nullish()
});
export type NoticeDelivery = z.infer<typeof noticeDeliverySchema>;

export const alertNoticeSchema = z.object({
  id: z.string(),
  kind: z.enum(['fired', 'reminder', 'resolved']),
  state: z.enum(NOTICE_STATES),
  created_at: isoTime,
  deliveries: z.array(noticeDeliverySchema)
});
export type AlertNotice = z.infer<typeof alertNoticeSchema>;

export const alertSchema = z.object({
  dedupe_key: z.string(),
  rule_id: z.string(),
  rule_name: z.string(),
  client_id: z.string(),
  hostname: z.string().nullish(),
  detail: z.string().nullish(),
  state: z.enum(['firing', 'resolved']),
  status: z.string().nullish(),
  since: isoTime.nullish(),
  fired_at: isoTime,
  reminders: z.number().int().default(0),
  resolved_at: isoTime.nullish(),
  resolve_reason: z.string().nullish(),
  notices: z.array(alertNoticeSchema).default([])
});
export type Alert = z.infer<typeof alertSchema>;

export const alertListSchema = z.object({ items: z.array(alertSchema), firing: z.number().int() });
export type AlertList = z.infer<typeof alertListSchema>;

/** POST /alerts/rules/{id}/test: each target's answer (error null when it was accepted). */
export const testSendSchema = z.object({
  items: z.array(z.object({ target_id: z.string(), target: z.string(), error: z.string().nullable() }))
});
export type TestSendResult = z.infer<typeof testSendSchema>['items'];

// Alert answers shaped as the server sends them (docs/api-shapes.md, alerts), for tests.
import type { Alert, AlertRule } from '$lib/api/schemas';
import { alertListSchema, alertRuleSchema } from '$lib/api/schemas';

export const ruleBody = {
  id: '0123456789abcdef',
  name: 'GPU hosts down',
  scope: { client_ids: [], labels: { gpu: 'a100' } },
  condition: { kind: 'status', statuses: ['offline', 'degraded'], for_s: 120 },
  notify: { urls: ['ntfy://ntfy.sh/obt'], webhooks: [{ url: 'https://hooks.test/obt', has_secret: true }] },
  send_resolved: true,
  remind_every_s: 3600,
  created_at: '2026-12-04T10:00:00+00:00',
  updated_at: '2026-12-04T10:00:00+00:00',
  position: 42
};

export const rule: AlertRule = alertRuleSchema.parse(ruleBody);

export const alertsBody = {
  firing: 1,
  items: [
    {
      dedupe_key: '0123456789abcdef/c-1/1',
      rule_id: '0123456789abcdef',
      rule_name: 'GPU hosts down',
      client_id: 'c-1',
      hostname: 'gpu-01',
      condition: ruleBody.condition,
      detail: 'offline for 3 min',
      state: 'firing',
      status: 'offline',
      since: '2026-12-04T10:00:00+00:00',
      fired_at: '2026-12-04T10:02:00+00:00',
      reminders: 0,
      last_notice_at: '2026-12-04T10:02:00+00:00',
      resolved_at: null,
      resolve_reason: null,
      resolved_status: null,
      position: 50,
      notices: [
        {
          id: 'n-1',
          kind: 'fired',
          state: 'pending',
          created_at: '2026-12-04T10:02:00+00:00',
          deliveries: [
            {
              target_id: 't-1',
              target: 'webhook https://hooks.test/…',
              state: 'pending',
              attempts: 2,
              last_error: 'HTTP 503',
              next_attempt_at: '2026-12-04T10:02:20+00:00',
              delivered_at: null
            },
            {
              target_id: 't-2',
              target: 'apprise ntfy://…',
              state: 'delivered',
              attempts: 1,
              last_error: null,
              next_attempt_at: null,
              delivered_at: '2026-12-04T10:02:01+00:00'
            }
          ]
        }
      ]
    }
  ]
};

export const firingAlert: Alert = alertListSchema.parse(alertsBody).items[0]!;

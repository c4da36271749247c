import { describe, expect, it } from 'vitest';
import { alertListSchema, alertRuleSchema, testSendSchema } from '$lib/api/schemas';
import { alertsBody, rule, ruleBody } from './fixtures';
import {
  describeCondition,
  describeDelivery,
  describeScope,
  draftFromRule,
  draftToRequest,
  emptyDraft,
  parseLabels
} from './rules';

describe('alert schemas', () => {
  it('read a rule, the alerts with their deliveries, and a test send', () => {
    expect(rule.notify.webhooks).toEqual([{ url: 'https://hooks.test/obt', has_secret: true }]);
    const alerts = alertListSchema.parse(alertsBody);
    expect(alerts.firing).toBe(1);
    expect(alerts.items[0]!.notices[0]!.deliveries[0]!.next_attempt_at).toBe('2026-12-04T10:02:20+00:00');
    const sent = testSendSchema.parse({
      items: [{ target_id: 't', target: 'apprise json://…', error: null }]
    });
    expect(sent.items[0]!.error).toBeNull();
  });
  it('refuse a condition kind the dashboard does not know', () => {
    const bad = { ...ruleBody, condition: { kind: 'flapping', for_s: 0 } };
    expect(alertRuleSchema.safeParse(bad).success).toBe(false);
  });
});

describe('draftToRequest', () => {
  it('turns a new status rule into the API body', () => {
    const result = draftToRequest({
      ...emptyDraft(),
      name: ' Down ',
      forS: '60',
      urls: 'json://127.0.0.1:9/x'
    });
    expect(result).toEqual({
      ok: true,
      body: {
        name: 'Down',
        scope: { client_ids: [], labels: {} },
        condition: { kind: 'status', statuses: ['offline'], for_s: 60 },
        notify: { urls: ['json://127.0.0.1:9/x'], webhooks: [] },
        send_resolved: true,
        remind_every_s: null
      }
    });
  });
  it('scopes by client ids or labels', () => {
    const ids = draftToRequest({
      ...emptyDraft(),
      name: 'a',
      scopeKind: 'clients',
      clientIds: 'c-1\nc-2, c-3'
    });
    expect(ids.ok && ids.body.scope.client_ids).toEqual(['c-1', 'c-2', 'c-3']);
    const labels = draftToRequest({
      ...emptyDraft(),
      name: 'a',
      scopeKind: 'labels',
      labels: 'gpu=a100\nrack = 4'
    });
    expect(labels.ok && labels.body.scope.labels).toEqual({ gpu: 'a100', rack: '4' });
  });
  it('builds model conditions; drift without a model means any model', () => {
    const missing = draftToRequest({
      ...emptyDraft(),
      name: 'a',
      conditionKind: 'model_missing',
      model: 'phi4'
    });
    expect(missing.ok && missing.body.condition).toEqual({ kind: 'model_missing', model: 'phi4', for_s: 0 });
    const drift = draftToRequest({ ...emptyDraft(), name: 'a', conditionKind: 'digest_drift' });
    expect(drift.ok && drift.body.condition).toEqual({ kind: 'digest_drift', model: null, for_s: 0 });
  });
  it('says what to fix before sending', () => {
    const result = draftToRequest({
      ...emptyDraft(),
      scopeKind: 'labels',
      labels: 'no-equals',
      statuses: [],
      forS: '-1',
      urls: 'no-scheme',
      remindEveryS: '30'
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(Object.keys(result.errors).sort()).toEqual([
      'condition',
      'forS',
      'name',
      'notify',
      'remind',
      'scope'
    ]);
  });
  it('needs a secret for a new webhook, keeps the stored one of an edited webhook', () => {
    const fresh = draftToRequest({
      ...emptyDraft(),
      name: 'a',
      webhooks: [{ url: 'https://h.test/x', secret: '', hasSecret: false }]
    });
    expect(fresh.ok).toBe(false);
    const edited = draftToRequest(draftFromRule(rule));
    expect(edited.ok && edited.body.notify.webhooks).toEqual([{ url: 'https://hooks.test/obt' }]);
  });
});

describe('draftFromRule', () => {
  it('round-trips a rule through the form to the same body', () => {
    const result = draftToRequest(draftFromRule(rule));
    expect(result).toEqual({
      ok: true,
      body: {
        name: rule.name,
        scope: { client_ids: [], labels: { gpu: 'a100' } },
        condition: ruleBody.condition,
        notify: { urls: rule.notify.urls, webhooks: [{ url: 'https://hooks.test/obt' }] },
        send_resolved: true,
        remind_every_s: 3600
      }
    });
  });
});

describe('descriptions', () => {
  it('say what a rule watches and where', () => {
    expect(describeCondition(rule.condition)).toBe(
      'Status offline or degraded (Ollama unreachable) for 2 min'
    );
    expect(describeCondition({ kind: 'digest_drift', model: null, for_s: 0 })).toBe(
      'Digest drift of any model'
    );
    expect(describeScope(rule.scope)).toBe('labels gpu=a100');
    expect(describeScope({ client_ids: [], labels: {} })).toBe('Every client');
    expect(parseLabels('a=b=c')).toEqual({ a: 'b=c' });
  });
  it('say how a delivery stands', () => {
    const d = {
      target_id: 't',
      target: 'x',
      state: 'pending',
      attempts: 2,
      last_error: 'e',
      next_attempt_at: null,
      delivered_at: null
    };
    expect(describeDelivery({ ...d, state: 'delivered', attempts: 1 })).toBe('Delivered (1 attempt)');
    expect(describeDelivery({ ...d, state: 'failed' })).toBe('Failed, given up (2 attempts)');
    expect(describeDelivery({ ...d, next_attempt_at: '2026-12-04T10:00:00Z' })).toBe(
      'Failed (2 attempts), retried'
    );
    expect(describeDelivery({ ...d, attempts: 0 })).toBe('Pending');
  });
});

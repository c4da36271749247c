// Alert rules as the dashboard edits them: a flat draft bound to the form, turned into the
// API's body (docs/api-shapes.md, alerts) with the errors a person can fix before sending,
// and back from a rule for editing. Webhook secrets are never shown by the server: an edited
// webhook without a new secret keeps the stored one (the server matches it by url).
import type { AlertRuleRequest } from '$lib/api/client';
import type { AlertCondition, AlertRule, AlertStatus, NoticeDelivery } from '$lib/api/schemas';
import { formatSpan } from '$lib/format/time';

export type ScopeKind = 'all' | 'clients' | 'labels';
export type ConditionKind = AlertCondition['kind'];

export interface WebhookDraft {
  url: string;
  secret: string;
  /** The server holds a secret for this url (an edited rule): an empty `secret` keeps it. */
  hasSecret: boolean;
}

export interface RuleDraft {
  name: string;
  scopeKind: ScopeKind;
  /** One client id per line (or comma-separated). */
  clientIds: string;
  /** One `key=value` per line. */
  labels: string;
  conditionKind: ConditionKind;
  statuses: AlertStatus[];
  model: string;
  forS: string;
  /** One Apprise URL per line. */
  urls: string;
  webhooks: WebhookDraft[];
  sendResolved: boolean;
  /** Empty: no reminders. */
  remindEveryS: string;
}

export type DraftErrors = Partial<
  Record<'name' | 'scope' | 'condition' | 'forS' | 'notify' | 'remind', string>
>;

export type DraftResult = { ok: true; body: AlertRuleRequest } | { ok: false; errors: DraftErrors };

export const MIN_REMIND_S = 60;
export const MAX_REMIND_S = 30 * 86_400;
export const MAX_TARGETS = 20;

export function emptyDraft(): RuleDraft {
  return {
    name: '',
    scopeKind: 'all',
    clientIds: '',
    labels: '',
    conditionKind: 'status',
    statuses: ['offline'],
    model: '',
    forS: '0',
    urls: '',
    webhooks: [],
    sendResolved: true,
    remindEveryS: ''
  };
}

export function draftFromRule(rule: AlertRule): RuleDraft {
  const { scope, condition, notify } = rule;
  const scopeKind: ScopeKind =
    scope.client_ids.length > 0 ? 'clients' : Object.keys(scope.labels).length > 0 ? 'labels' : 'all';
  return {
    name: rule.name,
    scopeKind,
    clientIds: scope.client_ids.join('\n'),
    labels: Object.entries(scope.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n'),
    conditionKind: condition.kind,
    statuses: condition.kind === 'status' ? [...condition.statuses] : ['offline'],
    model: condition.kind === 'status' ? '' : (condition.model ?? ''),
    forS: String(condition.for_s),
    urls: notify.urls.join('\n'),
    webhooks: notify.webhooks.map((w) => ({ url: w.url, secret: '', hasSecret: w.has_secret })),
    sendResolved: rule.send_resolved,
    remindEveryS: rule.remind_every_s === null ? '' : String(rule.remind_every_s)
  };
}

const lines = (text: string) =>
  text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);

/** `key=value` lines into labels; null when a line has no `=` or an empty key. */
export function parseLabels(text: string): Record<string, string> | null {
  const labels: Record<string, string> = {};
  for (const line of text.split('\n').map((s) => s.trim())) {
    if (!line) continue;
    const at = line.indexOf('=');
    if (at <= 0) return null;
    labels[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return labels;
}

function seconds(text: string): number | null {
  const value = Number(text.trim());
  return text.trim() !== '' && Number.isFinite(value) && value >= 0 ? value : null;
}

/** The body to send, or what to fix first (the server checks again and says why it refuses). */
export function draftToRequest(draft: RuleDraft): DraftResult {
  const errors: DraftErrors = {};
  const name = draft.name.trim();
  if (!name) errors.name = 'Give the rule a name.';

  const scope: AlertRuleRequest['scope'] = { client_ids: [], labels: {} };
  if (draft.scopeKind === 'clients') {
    scope.client_ids = lines(draft.clientIds);
    if (scope.client_ids.length === 0) errors.scope = 'List at least one client id.';
  } else if (draft.scopeKind === 'labels') {
    const labels = parseLabels(draft.labels);
    if (labels === null) errors.scope = 'Write one key=value per line.';
    else if (Object.keys(labels).length === 0) errors.scope = 'Give at least one label.';
    else scope.labels = labels;
  }

  const forS = seconds(draft.forS);
  if (forS === null) errors.forS = 'A number of seconds, 0 or more.';
  const model = draft.model.trim();
  let condition: AlertRuleRequest['condition'];
  if (draft.conditionKind === 'status') {
    if (draft.statuses.length === 0) errors.condition = 'Choose at least one status.';
    condition = { kind: 'status', statuses: [...draft.statuses], for_s: forS ?? 0 };
  } else if (draft.conditionKind === 'model_missing') {
    if (!model) errors.condition = 'Name the model that must be present.';
    condition = { kind: 'model_missing', model, for_s: forS ?? 0 };
  } else {
    condition = { kind: 'digest_drift', model: model || null, for_s: forS ?? 0 };
  }

  const urls = lines(draft.urls);
  const webhooks: AlertRuleRequest['notify']['webhooks'] = [];
  for (const w of draft.webhooks) {
    const url = w.url.trim();
    if (!url) continue;
    const secret = w.secret.trim();
    if (!secret && !w.hasSecret) errors.notify = `The webhook ${url} needs a secret (its signing key).`;
    webhooks.push(secret ? { url, secret } : { url });
  }
  if (urls.some((u) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(u)))
    errors.notify = 'An Apprise URL starts with its scheme, such as ntfy:// or json://.';
  if (urls.length + webhooks.length > MAX_TARGETS) errors.notify = `At most ${MAX_TARGETS} targets.`;

  let remind: number | null = null;
  if (draft.remindEveryS.trim()) {
    remind = seconds(draft.remindEveryS);
    if (remind === null || remind < MIN_REMIND_S || remind > MAX_REMIND_S)
      errors.remind = `Between ${MIN_REMIND_S} s and 30 days, or empty for no reminders.`;
  }

  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return {
    ok: true,
    body: {
      name,
      scope,
      condition,
      notify: { urls, webhooks },
      send_resolved: draft.sendResolved,
      remind_every_s: remind
    }
  };
}

const STATUS_WORDS: Record<AlertStatus, string> = {
  offline: 'offline',
  degraded: 'degraded (Ollama unreachable)',
  stopped: 'stopped'
};

/** One line saying what a condition watches. */
export function describeCondition(condition: AlertCondition): string {
  const wait = condition.for_s > 0 ? ` for ${formatSpan(condition.for_s)}` : '';
  if (condition.kind === 'status')
    return `Status ${condition.statuses.map((s) => STATUS_WORDS[s]).join(' or ')}${wait}`;
  if (condition.kind === 'model_missing') return `Model ${condition.model} missing${wait}`;
  return `Digest drift of ${condition.model ?? 'any model'}${wait}`;
}

export function describeScope(scope: AlertRule['scope']): string {
  const parts: string[] = [];
  if (scope.client_ids.length > 0)
    parts.push(`${scope.client_ids.length} client${scope.client_ids.length === 1 ? '' : 's'}`);
  const labels = Object.entries(scope.labels).map(([k, v]) => `${k}=${v}`);
  if (labels.length > 0) parts.push(`labels ${labels.join(', ')}`);
  return parts.length > 0 ? parts.join(' with ') : 'Every client';
}

/** A delivery in words: delivered, failed for good, or failing and retried at a time. */
export function describeDelivery(d: NoticeDelivery): string {
  const attempts = `${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`;
  if (d.state === 'delivered') return `Delivered (${attempts})`;
  if (d.state === 'failed' && !d.next_attempt_at) return `Failed, given up (${attempts})`;
  if (d.attempts === 0) return 'Pending';
  return `Failed (${attempts}), retried`;
}

import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import type { AlertRuleRequest } from '$lib/api/client';
import AlertEntry from './AlertEntry.svelte';
import AlertRuleCard from './AlertRuleCard.svelte';
import AlertRuleForm from './AlertRuleForm.svelte';
import { firingAlert, rule } from './fixtures';
import { draftFromRule, emptyDraft } from './rules';

describe('AlertRuleForm', () => {
  it('shows what to fix and sends nothing while the draft is wrong', async () => {
    const onsubmit = vi.fn(async () => null);
    render(AlertRuleForm, { draft: emptyDraft(), submitLabel: 'Create rule', onsubmit });
    await fireEvent.click(screen.getByRole('button', { name: 'Create rule' }));
    expect(await screen.findByText('Give the rule a name.')).toBeInTheDocument();
    expect(onsubmit).not.toHaveBeenCalled();
  });

  it('sends the body of an edited rule and shows the server refusal', async () => {
    let sent: AlertRuleRequest | null = null;
    const onsubmit = vi.fn(async (body: AlertRuleRequest) => {
      sent = body;
      return 'remind_every_s: too short';
    });
    render(AlertRuleForm, { draft: draftFromRule(rule), submitLabel: 'Save rule', onsubmit });
    await fireEvent.input(screen.getByLabelText('Name'), { target: { value: 'Renamed' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Save rule' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('remind_every_s: too short');
    expect(sent).toMatchObject({
      name: 'Renamed',
      notify: { webhooks: [{ url: 'https://hooks.test/obt' }] }
    });
  });
});

describe('AlertRuleCard', () => {
  it('says what the rule watches and shows each target of a test send', async () => {
    const ontest = vi.fn(async () => [
      { target_id: 'a', target: 'apprise ntfy://…', error: null },
      { target_id: 'b', target: 'webhook https://hooks.test/…', error: 'HTTP 500' }
    ]);
    render(AlertRuleCard, { rule, onedit: vi.fn(), ondelete: vi.fn(async () => undefined), ontest });
    expect(screen.getByRole('heading', { name: 'GPU hosts down' })).toBeInTheDocument();
    expect(screen.getByText(/labels gpu=a100/)).toBeInTheDocument();
    await fireEvent.click(screen.getByRole('button', { name: 'Test send GPU hosts down' }));
    const results = await screen.findByRole('list', { name: 'Test send of GPU hosts down' });
    expect(results).toHaveTextContent('Sent: apprise ntfy://…');
    expect(results).toHaveTextContent('Failed: webhook https://hooks.test/…: HTTP 500');
  });

  it('asks before deleting', async () => {
    const ondelete = vi.fn(async () => undefined);
    render(AlertRuleCard, { rule, onedit: vi.fn(), ondelete, ontest: vi.fn(async () => []) });
    await fireEvent.click(screen.getByRole('button', { name: 'Delete GPU hosts down' }));
    expect(ondelete).not.toHaveBeenCalled();
    await fireEvent.click(screen.getByRole('button', { name: 'Delete GPU hosts down for good' }));
    expect(ondelete).toHaveBeenCalledWith(rule);
  });
});

describe('AlertEntry', () => {
  it('shows a firing alert with one row per delivery: state, error, next attempt', () => {
    render(AlertEntry, { alert: firingAlert });
    expect(screen.getByTestId('alert-state')).toHaveTextContent('Firing');
    expect(screen.getByRole('link', { name: 'gpu-01' })).toBeInTheDocument();
    const rows = screen.getAllByTestId('delivery');
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveTextContent('Failed (2 attempts), retried');
    expect(rows[0]).toHaveTextContent('HTTP 503');
    expect(rows[1]).toHaveTextContent('Delivered (1 attempt)');
  });
});

import { get } from 'svelte/store';
import { describe, expect, it } from 'vitest';
import type { Api } from '$lib/api/client';
import { alertListSchema } from '$lib/api/schemas';
import { createAlertsFeed } from './feed';
import { alertsBody, rule } from './fixtures';

function fakeApi(calls: string[]): Pick<Api, 'alertRules' | 'alerts'> {
  const list = alertListSchema.parse(alertsBody);
  return {
    alertRules: async (token) => {
      calls.push(`rules ${token}`);
      return [rule];
    },
    alerts: async (state, token) => {
      calls.push(`alerts ${state} ${token}`);
      return state === 'firing' ? list : { ...list, items: [] };
    }
  };
}

describe('createAlertsFeed', () => {
  it('asks for nothing without the token', async () => {
    const calls: string[] = [];
    const feed = createAlertsFeed(fakeApi(calls), () => null);
    await feed.refresh();
    expect(calls).toEqual([]);
    expect(get(feed).loaded).toBe(false);
    feed.stop();
  });

  it('loads rules, firing alerts and the history with the token', async () => {
    const calls: string[] = [];
    const feed = createAlertsFeed(fakeApi(calls), () => 'tok');
    await feed.refresh();
    feed.stop();
    expect(calls.sort()).toEqual(['alerts all tok', 'alerts firing tok', 'rules tok']);
    const state = get(feed);
    expect(state.loaded).toBe(true);
    expect(state.rules.map((r) => r.id)).toEqual([rule.id]);
    expect(state.firing).toHaveLength(1);
    expect(state.history).toEqual([]);
  });

  it('keeps what it showed and reports the error when a refresh fails', async () => {
    let fail = false;
    const api = fakeApi([]);
    const feed = createAlertsFeed(
      {
        ...api,
        alertRules: async (token) => {
          if (fail) throw new Error('down');
          return api.alertRules(token);
        }
      },
      () => 'tok'
    );
    await feed.refresh();
    fail = true;
    await feed.refresh();
    feed.stop();
    expect(get(feed).rules).toHaveLength(1);
    expect(get(feed).error).toBeInstanceOf(Error);
  });
});

// What the Alerts page shows, kept fresh: the rules, the alerts firing now and the history
// (with each notice's delivery attempts), asked for again every REFRESH_MS and at once after
// a change. Needs the admin token; without it the feed is empty and not loaded.
import { writable, type Readable } from 'svelte/store';
import type { Api } from '$lib/api/client';
import type { Alert, AlertRule } from '$lib/api/schemas';

export const REFRESH_MS = 10_000;

export interface AlertsFeedState {
  rules: AlertRule[];
  firing: Alert[];
  history: Alert[];
  error: unknown;
  loaded: boolean;
}

export interface AlertsFeed extends Readable<AlertsFeedState> {
  refresh(): Promise<void>;
  stop(): void;
}

const EMPTY: AlertsFeedState = { rules: [], firing: [], history: [], error: null, loaded: false };

export function createAlertsFeed(
  api: Pick<Api, 'alertRules' | 'alerts'>,
  token: () => string | null,
  every = REFRESH_MS
): AlertsFeed {
  const store = writable<AlertsFeedState>(EMPTY);
  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;
  let ticket = 0;

  async function refresh(): Promise<void> {
    const mine = ++ticket;
    if (timer !== null) clearTimeout(timer);
    timer = null;
    const current = token();
    if (!current) {
      store.set(EMPTY);
      return;
    }
    try {
      const [rules, firing, history] = await Promise.all([
        api.alertRules(current),
        api.alerts('firing', current),
        api.alerts('all', current)
      ]);
      if (mine !== ticket) return; // a newer refresh answers
      store.set({ rules, firing: firing.items, history: history.items, error: null, loaded: true });
    } catch (error) {
      if (mine !== ticket) return;
      store.update((s) => ({ ...s, error }));
    }
    if (!stopped) timer = setTimeout(() => void refresh(), every);
  }

  return {
    subscribe: store.subscribe,
    refresh,
    stop() {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
    }
  };
}

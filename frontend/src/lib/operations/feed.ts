// The operations the dashboard shows, kept fresh: asked for again every second while one is
// queued or running (progress is recorded at most every 5 s per host, phases at once), every
// 15 s otherwise. Each answer feeds the per-host ETA history.
import { writable, type Readable } from 'svelte/store';
import type { Api } from '$lib/api/client';
import type { Operation } from '$lib/api/schemas';
import { ProgressHistory } from './progress';

export const ACTIVE_EVERY_MS = 1000;
export const IDLE_EVERY_MS = 15_000;

export interface OperationsFeedState {
  items: Operation[];
  error: unknown;
  loaded: boolean;
}

export interface OperationsFeed extends Readable<OperationsFeedState> {
  readonly history: ProgressHistory;
  /** Ask now (after a request or a cancel) and keep asking at the pace above. */
  refresh(): Promise<void>;
  stop(): void;
}

export const isActive = (operation: Operation) =>
  !operation.finished && operation.targets.some((t) => t.state === 'queued' || t.state === 'running');

/** At most this many hostnames are looked up per refresh (each client id once). */
export const NAMES_PER_REFRESH = 50;

export function createOperationsFeed(
  api: Pick<Api, 'operations' | 'client'>,
  token: () => string | null,
  now: () => number = () => Date.now()
): OperationsFeed {
  const store = writable<OperationsFeedState>({ items: [], error: null, loaded: false });
  const history = new ProgressHistory();
  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;
  let ticket = 0;
  // Hostnames for the client ids operations name (the server sends ids), looked up once each.
  const names = new Map<string, string | null>();

  function named(items: Operation[]): Operation[] {
    return items.map((op) => ({
      ...op,
      targets: op.targets.map((t) => ({ ...t, hostname: t.hostname ?? names.get(t.client_id) ?? null }))
    }));
  }

  async function lookUp(items: Operation[]): Promise<boolean> {
    const wanted = [...new Set(items.flatMap((op) => op.targets.map((t) => t.client_id)))]
      .filter((id) => !names.has(id))
      .slice(0, NAMES_PER_REFRESH);
    for (const id of wanted) names.set(id, null);
    const found = await Promise.all(
      wanted.map((id) =>
        api.client(id).then(
          (c) => names.set(id, c.hostname),
          () => undefined // decommissioned or gone: the id is shown
        )
      )
    );
    return found.length > 0;
  }

  function schedule(ms: number) {
    if (timer !== null) clearTimeout(timer);
    timer = stopped ? null : setTimeout(() => void refresh(), ms);
  }

  async function refresh(): Promise<void> {
    const mine = ++ticket;
    const current = token();
    if (!current) {
      store.set({ items: [], error: null, loaded: false });
      return;
    }
    try {
      const items = await api.operations(current);
      if (mine !== ticket || stopped) return;
      const at = now();
      for (const op of items) {
        for (const t of op.targets) {
          if (t.state === 'running' && t.completed != null) {
            history.record(`${op.operation_id}/${t.client_id}`, {
              completed: t.completed,
              total: t.total,
              at
            });
          }
        }
      }
      store.set({ items: named(items), error: null, loaded: true });
      schedule(items.some(isActive) ? ACTIVE_EVERY_MS : IDLE_EVERY_MS);
      if (await lookUp(items)) {
        if (mine === ticket && !stopped) store.update((s) => ({ ...s, items: named(items) }));
      }
    } catch (error) {
      if (mine !== ticket || stopped) return;
      store.update((s) => ({ ...s, error }));
      schedule(IDLE_EVERY_MS);
    }
  }

  return {
    subscribe: store.subscribe,
    history,
    refresh,
    stop() {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
    }
  };
}

export const TARGET_STYLES: Record<Operation['targets'][number]['state'], { label: string; badge: string }> =
  {
    queued: {
      label: 'Queued',
      badge: 'bg-gray-100 text-gray-800 ring-gray-300 dark:bg-gray-800 dark:text-gray-200'
    },
    running: {
      label: 'Running',
      badge: 'bg-sky-100 text-sky-900 ring-sky-300 dark:bg-sky-500/15 dark:text-sky-200'
    },
    succeeded: {
      label: 'Succeeded',
      badge: 'bg-emerald-100 text-emerald-900 ring-emerald-300 dark:bg-emerald-500/15 dark:text-emerald-200'
    },
    failed: {
      label: 'Failed',
      badge: 'bg-red-100 text-red-900 ring-red-300 dark:bg-red-500/15 dark:text-red-200'
    },
    cancelled: {
      label: 'Cancelled',
      badge: 'bg-amber-100 text-amber-900 ring-amber-300 dark:bg-amber-500/15 dark:text-amber-200'
    },
    expired: {
      label: 'Expired',
      badge: 'bg-orange-100 text-orange-900 ring-orange-300 dark:bg-orange-500/15 dark:text-orange-200'
    }
  };

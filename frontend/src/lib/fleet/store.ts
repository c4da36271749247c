// The fleet's current clients, loaded from GET /clients and kept fresh by live `client`
// messages. Live updates are batched so a heartbeat storm from 1,000 agents re-renders the
// table a few times a second, not a hundred.
import { writable, type Readable } from 'svelte/store';
import type { Api } from '$lib/api/client';
import type { ClientSummary } from '$lib/api/schemas';

export interface FleetState {
  phase: 'loading' | 'ready' | 'error';
  clients: ClientSummary[];
  error: unknown;
}

export interface FleetStore extends Readable<FleetState> {
  load(): Promise<void>;
  /** Queue a live update; ignored when older than what the store holds. */
  apply(client: ClientSummary): void;
  /** Apply queued updates now (tests, and the flush timer). */
  flush(): void;
  dispose(): void;
}

export interface FleetStoreOptions {
  flushMs?: number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

export function createFleetStore(api: Pick<Api, 'clients'>, options: FleetStoreOptions = {}): FleetStore {
  const flushMs = options.flushMs ?? 250;
  const setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
  const clearTimer = options.clearTimer ?? ((handle) => clearTimeout(handle as number));
  const byId = new Map<string, ClientSummary>();
  const pending = new Map<string, ClientSummary>();
  let timer: unknown = null;
  let request = 0;
  const store = writable<FleetState>({ phase: 'loading', clients: [], error: null });

  const publish = () => store.set({ phase: 'ready', clients: [...byId.values()], error: null });

  function flush() {
    if (timer !== null) {
      clearTimer(timer);
      timer = null;
    }
    if (pending.size === 0) return;
    let changed = false;
    for (const [id, client] of pending) {
      const current = byId.get(id);
      if (!current || client.position >= current.position) {
        byId.set(id, client);
        changed = true;
      }
    }
    pending.clear();
    if (changed) publish();
  }

  return {
    subscribe: store.subscribe,
    async load() {
      const ticket = ++request;
      store.update((s) => ({ ...s, phase: s.phase === 'ready' ? 'ready' : 'loading' }));
      try {
        const clients = await api.clients();
        if (ticket !== request) return;
        // Keep a live update that arrived while the snapshot was in flight if it is newer.
        const previous = new Map(byId);
        byId.clear();
        for (const client of clients) {
          const held = previous.get(client.client_id);
          byId.set(client.client_id, held && held.position > client.position ? held : client);
        }
        publish();
      } catch (error) {
        if (ticket !== request) return;
        store.set({ phase: 'error', clients: [...byId.values()], error });
      }
    },
    apply(client) {
      const queued = pending.get(client.client_id);
      if (!queued || client.position >= queued.position) pending.set(client.client_id, client);
      if (timer === null) timer = setTimer(flush, flushMs);
    },
    flush,
    dispose() {
      if (timer !== null) clearTimer(timer);
      timer = null;
      pending.clear();
    }
  };
}

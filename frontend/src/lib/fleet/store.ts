// The fleet table's state: one page of clients, sorted and filtered by the server, with the
// fleet's counts by status. Only the rows in view are held; live `client` messages refresh
// those rows (batched, so a heartbeat storm re-renders a few times a second, not hundreds),
// and the page is asked for again now and then so new and moved clients show up.
import { writable, type Readable } from 'svelte/store';
import type { Api } from '$lib/api/client';
import { STATUSES, type ClientSummary, type Status, type StatusCounts } from '$lib/api/schemas';
import { DEFAULT_QUERY, PAGE_SIZE, pageRequest, sameQuery, type TableQuery } from './table';

export interface FleetState {
  /** idle: nothing asked yet; loading: the first page is on its way. */
  phase: 'idle' | 'loading' | 'ready' | 'error';
  query: TableQuery;
  rows: ClientSummary[];
  /** 1-based page number and how many pages the matches fill. */
  page: number;
  pages: number;
  hasNext: boolean;
  /** Clients matching the query, and in the whole fleet. */
  matched: number;
  total: number;
  counts: StatusCounts;
  /** Every `key=value` label in the fleet, for the label filter. */
  labels: string[];
  error: unknown;
}

export interface FleetStore extends Readable<FleetState> {
  /** Ask for the first page of a new query (nothing happens when it asks for the same rows). */
  setQuery(query: TableQuery): Promise<void>;
  next(): Promise<void>;
  previous(): Promise<void>;
  /** Ask for the page in view again (a retry, a resync after a reconnect, the refresh timer). */
  load(): Promise<void>;
  /** Queue a live update; kept only for a row in view and newer than what it holds. */
  apply(client: ClientSummary): void;
  /** Apply queued updates now (tests, and the flush timer). */
  flush(): void;
  /** Counts by status from the live feed. */
  applyCounts(total: number, counts: Partial<Record<Status, number>>): void;
  /** Stop asking for the page again (the fleet page is not shown); `load` starts again. */
  pause(): void;
  dispose(): void;
}

export interface FleetStoreOptions {
  flushMs?: number;
  /** How often the page in view is asked for again while the store is in use (0: never). */
  refreshMs?: number;
  pageSize?: number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

const zeroCounts = (): StatusCounts => Object.fromEntries(STATUSES.map((s) => [s, 0])) as StatusCounts;

export function createFleetStore(
  api: Pick<Api, 'clientPage' | 'fleetSummary'>,
  options: FleetStoreOptions = {}
): FleetStore {
  const flushMs = options.flushMs ?? 250;
  const refreshMs = options.refreshMs ?? 15_000;
  const pageSize = options.pageSize ?? PAGE_SIZE;
  const setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
  const clearTimer = options.clearTimer ?? ((handle) => clearTimeout(handle as number));
  const pending = new Map<string, ClientSummary>();
  let flushTimer: unknown = null;
  let refreshTimer: unknown = null;
  let request = 0;
  let inFlight: AbortController | null = null;
  let labelsLoaded = false;
  let paused = false;
  // cursors[i] is the cursor of page i + 1 (the first page has none).
  let cursors: (string | null)[] = [null];
  let nextCursor: string | null = null;
  let state: FleetState = {
    phase: 'idle',
    query: DEFAULT_QUERY,
    rows: [],
    page: 1,
    pages: 1,
    hasNext: false,
    matched: 0,
    total: 0,
    counts: zeroCounts(),
    labels: [],
    error: null
  };
  const store = writable<FleetState>(state);
  const set = (patch: Partial<FleetState>) => {
    state = { ...state, ...patch };
    store.set(state);
  };

  function scheduleRefresh() {
    if (refreshTimer !== null) clearTimer(refreshTimer);
    refreshTimer = refreshMs > 0 ? setTimer(() => void fetchPage(), refreshMs) : null;
  }

  async function fetchPage(): Promise<void> {
    const ticket = ++request;
    inFlight?.abort();
    const controller = new AbortController();
    inFlight = controller;
    const cursor = cursors[cursors.length - 1] ?? null;
    if (state.phase === 'idle') set({ phase: 'loading' });
    try {
      const [page, summary] = await Promise.all([
        api.clientPage(pageRequest(state.query, cursor, pageSize), controller.signal),
        labelsLoaded ? Promise.resolve(null) : api.fleetSummary(controller.signal)
      ]);
      if (ticket !== request) return;
      if (summary) labelsLoaded = true;
      nextCursor = page.next_cursor;
      // A live update that arrived while the page was in flight wins when it is newer.
      const rows = page.items.map((row) => {
        const held = pending.get(row.client_id);
        return held && held.position > row.position ? held : row;
      });
      set({
        phase: 'ready',
        rows,
        page: cursors.length,
        pages: Math.max(1, Math.ceil(page.matched / pageSize), cursors.length + (nextCursor ? 1 : 0)),
        hasNext: nextCursor !== null,
        matched: page.matched,
        total: page.total,
        counts: page.counts,
        labels: summary ? summary.labels : state.labels,
        error: null
      });
    } catch (error) {
      if (ticket !== request) return;
      // Rows already shown stay; the page shows the error above them.
      set({ phase: state.phase === 'ready' ? 'ready' : 'error', error });
    } finally {
      if (ticket === request) {
        inFlight = null;
        if (!paused) scheduleRefresh();
      }
    }
  }

  function flush() {
    if (flushTimer !== null) {
      clearTimer(flushTimer);
      flushTimer = null;
    }
    if (pending.size === 0) return;
    let changed = false;
    const rows = state.rows.map((row) => {
      const update = pending.get(row.client_id);
      if (update && update.position >= row.position && update !== row) {
        changed = true;
        return update;
      }
      return row;
    });
    pending.clear();
    if (changed) set({ rows });
  }

  return {
    subscribe: store.subscribe,
    async setQuery(query) {
      paused = false;
      if (state.phase !== 'idle' && sameQuery(query, state.query)) {
        state = { ...state, query };
        return;
      }
      cursors = [null];
      set({ query });
      await fetchPage();
    },
    async next() {
      if (nextCursor === null) return;
      cursors = [...cursors, nextCursor];
      await fetchPage();
    },
    async previous() {
      if (cursors.length <= 1) return;
      cursors = cursors.slice(0, -1);
      await fetchPage();
    },
    load() {
      paused = false;
      labelsLoaded = false;
      return fetchPage();
    },
    apply(client) {
      if (!state.rows.some((row) => row.client_id === client.client_id)) return;
      const queued = pending.get(client.client_id);
      if (!queued || client.position >= queued.position) pending.set(client.client_id, client);
      if (flushTimer === null) flushTimer = setTimer(flush, flushMs);
    },
    flush,
    applyCounts(total, counts) {
      set({ total, counts: { ...zeroCounts(), ...counts } });
    },
    pause() {
      if (refreshTimer !== null) clearTimer(refreshTimer);
      refreshTimer = null;
      paused = true;
    },
    dispose() {
      request++;
      inFlight?.abort();
      inFlight = null;
      if (flushTimer !== null) clearTimer(flushTimer);
      if (refreshTimer !== null) clearTimer(refreshTimer);
      flushTimer = null;
      refreshTimer = null;
      pending.clear();
    }
  };
}

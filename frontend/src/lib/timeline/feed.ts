// A newest-first timeline that pages backwards (`before`) and takes live entries at the top.
import { writable, type Readable } from 'svelte/store';
import type { TimelineEntry, TimelinePage } from '$lib/api/schemas';

export interface FeedState {
  phase: 'loading' | 'ready' | 'error';
  entries: TimelineEntry[];
  nextBefore: number | null;
  loadingMore: boolean;
  error: unknown;
}

export interface TimelineFeed extends Readable<FeedState> {
  load(): Promise<void>;
  more(): Promise<void>;
  /** Add a live entry; duplicates (same position) are ignored. */
  add(entry: TimelineEntry): void;
}

export function createTimelineFeed(
  fetchPage: (before: number | null) => Promise<TimelinePage>
): TimelineFeed {
  const initial: FeedState = {
    phase: 'loading',
    entries: [],
    nextBefore: null,
    loadingMore: false,
    error: null
  };
  const store = writable<FeedState>(initial);
  let state = initial;
  const set = (next: FeedState) => {
    state = next;
    store.set(next);
  };
  let ticket = 0;

  const merge = (a: readonly TimelineEntry[], b: readonly TimelineEntry[]) => {
    const byPosition = new Map<number, TimelineEntry>();
    for (const entry of [...a, ...b]) byPosition.set(entry.position, entry);
    return [...byPosition.values()].sort((x, y) => y.position - x.position);
  };

  return {
    subscribe: store.subscribe,
    async load() {
      const mine = ++ticket;
      set({ ...state, phase: state.phase === 'ready' ? 'ready' : 'loading', error: null });
      try {
        const page = await fetchPage(null);
        if (mine !== ticket) return;
        // Keep live entries that arrived meanwhile and are newer than the page.
        const head = page.items[0]?.position ?? 0;
        const newer = state.entries.filter((e) => e.position > head);
        set({
          phase: 'ready',
          entries: merge(newer, page.items),
          nextBefore: page.next_before,
          loadingMore: false,
          error: null
        });
      } catch (error) {
        if (mine === ticket) set({ ...state, phase: 'error', error });
      }
    },
    async more() {
      if (state.nextBefore === null || state.loadingMore) return;
      const mine = ticket;
      set({ ...state, loadingMore: true });
      try {
        const page = await fetchPage(state.nextBefore);
        if (mine !== ticket) return;
        set({
          ...state,
          entries: merge(state.entries, page.items),
          nextBefore: page.next_before,
          loadingMore: false
        });
      } catch (error) {
        set({ ...state, loadingMore: false, error });
      }
    },
    add(entry) {
      if (state.entries.some((e) => e.position === entry.position)) return;
      set({ ...state, entries: merge([entry], state.entries) });
    }
  };
}

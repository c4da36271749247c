// One API read as a store: loading, ready (with the value) or error. A reload keeps showing
// the last value while it runs, and a slow old answer never overwrites a newer one.
import { writable, type Readable } from 'svelte/store';

export type ResourceState<T> =
  | { phase: 'loading'; value: T | null; error: null }
  | { phase: 'ready'; value: T; error: null }
  | { phase: 'error'; value: T | null; error: unknown };

export interface Resource<T> extends Readable<ResourceState<T>> {
  load(): Promise<void>;
}

export function createResource<T>(loader: () => Promise<T>): Resource<T> {
  const store = writable<ResourceState<T>>({ phase: 'loading', value: null, error: null });
  let value: T | null = null;
  let ticket = 0;
  return {
    subscribe: store.subscribe,
    async load() {
      const mine = ++ticket;
      if (value === null) store.set({ phase: 'loading', value: null, error: null });
      try {
        const next = await loader();
        if (mine !== ticket) return;
        value = next;
        store.set({ phase: 'ready', value: next, error: null });
      } catch (error) {
        if (mine === ticket) store.set({ phase: 'error', value, error });
      }
    }
  };
}

/** Calls `fn` once, `ms` after the last of a burst of calls. */
export function debounce(fn: () => void, ms: number): { (): void; cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const run = () => {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      fn();
    }, ms);
  };
  run.cancel = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  };
  return run;
}

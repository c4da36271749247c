import { get } from 'svelte/store';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NetworkError } from '$lib/api/errors';
import { clientSummary } from '$lib/testing/fixtures';
import { createFleetStore } from './store';

describe('fleet store', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('loads the clients', async () => {
    const store = createFleetStore({ clients: async () => [clientSummary()] });
    expect(get(store).phase).toBe('loading');
    await store.load();
    expect(get(store)).toMatchObject({ phase: 'ready', clients: [{ client_id: 'gpu-01' }] });
  });

  it('keeps the error for the page to show', async () => {
    const error = new NetworkError('/clients');
    const store = createFleetStore({ clients: async () => Promise.reject(error) });
    await store.load();
    expect(get(store)).toMatchObject({ phase: 'error', error });
  });

  it('batches live updates into one publish', async () => {
    const store = createFleetStore(
      { clients: async () => [clientSummary({ position: 1 })] },
      { flushMs: 250 }
    );
    await store.load();
    const publishes = vi.fn();
    const unsubscribe = store.subscribe(publishes);
    publishes.mockClear();
    store.apply(clientSummary({ position: 2, status: 'degraded' }));
    store.apply(clientSummary({ position: 3, status: 'offline' }));
    store.apply(clientSummary({ client_id: 'new', hostname: 'new', position: 4 }));
    expect(publishes).not.toHaveBeenCalled();
    vi.advanceTimersByTime(250);
    expect(publishes).toHaveBeenCalledTimes(1);
    const clients = get(store).clients;
    expect(clients.find((c) => c.client_id === 'gpu-01')?.status).toBe('offline');
    expect(clients).toHaveLength(2);
    unsubscribe();
  });

  it('ignores updates older than what it holds', async () => {
    const store = createFleetStore({
      clients: async () => [clientSummary({ position: 10, status: 'online' })]
    });
    await store.load();
    store.apply(clientSummary({ position: 9, status: 'offline' }));
    store.flush();
    expect(get(store).clients[0]?.status).toBe('online');
  });

  it('keeps a newer live update over a snapshot that was already in flight', async () => {
    let resolve: (value: ReturnType<typeof clientSummary>[]) => void = () => {};
    const store = createFleetStore({ clients: () => new Promise((r) => (resolve = r)) });
    await (async () => {
      const loading = store.load();
      store.apply(clientSummary({ position: 20, status: 'degraded' }));
      store.flush();
      resolve([clientSummary({ position: 15, status: 'online' })]);
      await loading;
    })();
    expect(get(store).clients[0]?.status).toBe('degraded');
  });
});

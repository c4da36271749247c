import { get } from 'svelte/store';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { clientSummary } from '$lib/testing/fixtures';
import { backoffDelay, DEFAULT_BACKOFF } from './backoff';
import { LiveConnection, type EventSourceLike } from './connection';

/** A stand-in for EventSource that the test drives by hand. */
class FakeSource implements EventSourceLike {
  onopen: ((event: Event) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  closed = false;
  private listeners = new Map<string, ((event: MessageEvent) => void)[]>();
  constructor(readonly url: string) {}
  addEventListener(type: string, listener: (event: MessageEvent) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  close() {
    this.closed = true;
  }
  open() {
    this.onopen?.(new Event('open'));
  }
  fail() {
    this.onerror?.(new Event('error'));
  }
  send(type: string, data: unknown, id = '') {
    const event = new MessageEvent(type, {
      data: typeof data === 'string' ? data : JSON.stringify(data),
      lastEventId: id
    });
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }
}

describe('backoffDelay', () => {
  it('doubles from 1 s and caps at 30 s', () => {
    const none = () => 0;
    expect([0, 1, 2, 3, 4, 5, 6, 10].map((n) => backoffDelay(n, DEFAULT_BACKOFF, none))).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000
    ]);
  });

  it('jitters downwards by at most the jitter fraction', () => {
    expect(backoffDelay(2, DEFAULT_BACKOFF, () => 1)).toBe(3200);
    expect(backoffDelay(2, DEFAULT_BACKOFF, () => 0.5)).toBe(3600);
  });
});

describe('LiveConnection', () => {
  let sources: FakeSource[];
  let live: LiveConnection;
  const latest = () => sources[sources.length - 1]!;

  beforeEach(() => {
    vi.useFakeTimers();
    sources = [];
    live = new LiveConnection({
      url: '/api/v1/live',
      createSource: (url) => {
        const source = new FakeSource(url);
        sources.push(source);
        return source;
      },
      random: () => 0
    });
  });
  afterEach(() => {
    live.stop();
    vi.useRealTimers();
  });

  it('goes live when the stream opens', () => {
    live.start();
    expect(get(live.state)).toBe('connecting');
    latest().open();
    expect(get(live.state)).toBe('live');
    expect(latest().url).toBe('/api/v1/live');
  });

  it('reconnects with growing delays and resets them after a success', () => {
    live.start();
    latest().fail();
    expect(latest().closed).toBe(true);
    expect(get(live.state)).toBe('reconnecting');
    expect(get(live.retryInMs)).toBe(1000);

    vi.advanceTimersByTime(999);
    expect(sources).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(sources).toHaveLength(2);

    latest().fail();
    expect(get(live.retryInMs)).toBe(2000);
    vi.advanceTimersByTime(2000);
    latest().fail();
    expect(get(live.retryInMs)).toBe(4000);
    vi.advanceTimersByTime(4000);
    expect(sources).toHaveLength(4);

    latest().open();
    expect(get(live.state)).toBe('live');
    latest().fail();
    expect(get(live.retryInMs)).toBe(1000);
  });

  it('never waits longer than the cap', () => {
    live.start();
    for (let i = 0; i < 12; i++) {
      latest().fail();
      vi.advanceTimersByTime(30_000);
    }
    latest().fail();
    expect(get(live.retryInMs)).toBe(30_000);
  });

  it('asks pages to resync after a reconnect when nothing had arrived to resume from', () => {
    const resync = vi.fn();
    live.on('resync', resync);
    live.start();
    latest().open();
    expect(resync).not.toHaveBeenCalled();
    latest().fail();
    vi.advanceTimersByTime(1000);
    latest().open();
    expect(resync).toHaveBeenCalledTimes(1);
  });

  it('passes validated messages with their position and drops invalid ones', () => {
    const onInvalid = vi.fn();
    live = new LiveConnection({
      createSource: (url) => (sources.push(new FakeSource(url)), latest()),
      onInvalid
    });
    const received = vi.fn();
    live.on('client', received);
    live.start();
    latest().open();
    latest().send('client', clientSummary({ status: 'degraded' }), '57');
    latest().send('client', { ...clientSummary(), status: 'sleeping' }, '58');
    latest().send('client', 'not json', '59');
    expect(received).toHaveBeenCalledTimes(1);
    expect(received.mock.calls[0]?.[0]).toMatchObject({ status: 'degraded' });
    expect(received.mock.calls[0]?.[1]).toBe(57);
    expect(onInvalid).toHaveBeenCalledWith('client', expect.anything());
    expect(live.lastPosition).toBe(59);
  });

  it('turns a server reset into a resync', () => {
    const resync = vi.fn();
    live.on('resync', resync);
    live.start();
    latest().open();
    latest().send('reset', {});
    expect(resync).toHaveBeenCalledTimes(1);
  });

  it('resumes after the last id on reconnect, with nothing to reload', () => {
    const resync = vi.fn();
    const received = vi.fn();
    live.on('resync', resync);
    live.on('client', received);
    live.start();
    latest().open();
    latest().send('client', clientSummary({ status: 'online' }), '41');
    latest().fail();
    vi.advanceTimersByTime(1000);
    expect(latest().url).toBe('/api/v1/live?last_event_id=41');
    latest().open();
    latest().send('client', clientSummary({ status: 'offline' }), '44');
    expect(resync).not.toHaveBeenCalled();
    expect(received).toHaveBeenCalledTimes(2);
    expect(live.lastPosition).toBe(44);
  });

  it('takes the position of a reset and reloads', () => {
    const resync = vi.fn();
    live.on('resync', resync);
    live.start();
    latest().open();
    latest().send('reset', {}, '90');
    expect(resync).toHaveBeenCalledTimes(1);
    expect(live.lastPosition).toBe(90);
  });

  it('passes counts on', () => {
    const counts = vi.fn();
    live.on('counts', counts);
    live.start();
    latest().open();
    latest().send('counts', { position: 7, total: 3, by_status: { online: 2, offline: 1 } }, '7');
    latest().send('counts', { position: 8, total: -1, by_status: {} }, '8');
    expect(counts).toHaveBeenCalledTimes(1);
    expect(counts.mock.calls[0]?.[0]).toMatchObject({ total: 3, by_status: { online: 2 } });
  });

  it('watches what the page shows, reconnecting at once when that changes', () => {
    const resync = vi.fn();
    live.on('resync', resync);
    live.setWatch(['counts', 'client:a']);
    live.start();
    expect(latest().url).toBe('/api/v1/live?watch=client%3Aa%2Ccounts');
    latest().open();
    latest().send('client', clientSummary(), '20');

    live.setWatch(['client:a', 'counts']); // the same set: nothing to do
    expect(sources).toHaveLength(1);

    live.setWatch(['client:b', 'counts']);
    expect(sources[0]!.closed).toBe(true);
    expect(latest().url).toBe('/api/v1/live?watch=client%3Ab%2Ccounts&last_event_id=20');
    latest().open();
    live.setWatch(null);
    expect(latest().url).toBe('/api/v1/live?last_event_id=20');
    latest().open();
    expect(resync).not.toHaveBeenCalled();
    expect(get(live.state)).toBe('live');
  });

  it('stops retrying once stopped', () => {
    live.start();
    latest().fail();
    live.stop();
    vi.advanceTimersByTime(60_000);
    expect(sources).toHaveLength(1);
    expect(get(live.state)).toBe('stopped');
  });

  it('unsubscribes handlers', () => {
    const handler = vi.fn();
    const off = live.on('timeline', handler);
    off();
    live.start();
    latest().send('timeline', {
      position: 1,
      at: '2026-11-27T12:00:00Z',
      client_id: 'a',
      type: 'X',
      summary: 's'
    });
    expect(handler).not.toHaveBeenCalled();
  });
});

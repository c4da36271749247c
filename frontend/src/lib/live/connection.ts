// The dashboard's single subscription to /api/v1/live (Server-Sent Events). It validates each
// message, hands it to subscribers, and reconnects with backoff when the stream drops. Every
// message's id is a watermark (everything watched up to that position has been sent), so a
// reconnect resumes from the last one (`?last_event_id=`, as a fresh EventSource cannot set
// the header) and nothing is lost; pages reload (`resync`) only when the server says `reset`
// or when nothing had arrived before the stream dropped.
import { writable, type Readable } from 'svelte/store';
import { z } from 'zod';
import { API_BASE } from '$lib/api/client';
import { clientSummarySchema, liveModelSchema, timelineEntrySchema } from '$lib/api/schemas';
import type { ClientSummary, LiveModel, Status, TimelineEntry } from '$lib/api/schemas';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff';

/** `event: counts`: clients by status across the fleet, as of `position`. */
export const liveCountsSchema = z.object({
  position: z.number().int(),
  total: z.number().int().nonnegative(),
  // Keyed by status; a status this dashboard does not know yet is carried, not refused.
  by_status: z.record(z.string(), z.number().int().nonnegative())
});
export interface LiveCounts {
  position: number;
  total: number;
  by_status: Partial<Record<Status, number>>;
}

export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'stopped';

export interface LiveEvents {
  client: ClientSummary;
  model: LiveModel;
  timeline: TimelineEntry;
  counts: LiveCounts;
  /** What the page shows may have changed unseen: reload it from the API. */
  resync: null;
}

type Handler<K extends keyof LiveEvents> = (payload: LiveEvents[K], position: number | null) => void;

/** The part of EventSource the connection uses, so tests can pass a fake. */
export interface EventSourceLike {
  onopen: ((event: Event) => void) | null;
  onerror: ((event: Event) => void) | null;
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  close(): void;
}

export interface LiveOptions {
  url?: string;
  createSource?: (url: string) => EventSourceLike;
  backoff?: BackoffOptions;
  random?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  onInvalid?: (type: string, error: z.ZodError) => void;
}

const schemas = {
  client: clientSummarySchema,
  model: liveModelSchema,
  timeline: timelineEntrySchema,
  counts: liveCountsSchema
};
type MessageType = keyof typeof schemas;

export class LiveConnection {
  readonly state: Readable<LiveState>;
  /** Milliseconds until the next attempt while reconnecting (for the indicator's tooltip). */
  readonly retryInMs: Readable<number | null>;
  private readonly setState: (state: LiveState) => void;
  private readonly setRetry: (ms: number | null) => void;
  private readonly handlers = new Map<keyof LiveEvents, Set<Handler<never>>>();
  private source: EventSourceLike | null = null;
  private timer: unknown = null;
  private attempt = 0;
  private everConnected = false;
  private running = false;
  private watching: string | null = null;
  /** The last message id (a position): where a reconnect resumes. */
  lastPosition: number | null = null;

  constructor(private readonly options: LiveOptions = {}) {
    const state = writable<LiveState>('stopped');
    const retry = writable<number | null>(null);
    this.state = { subscribe: state.subscribe };
    this.retryInMs = { subscribe: retry.subscribe };
    this.setState = state.set;
    this.setRetry = retry.set;
  }

  on<K extends keyof LiveEvents>(type: K, handler: Handler<K>): () => void {
    let set = this.handlers.get(type);
    if (!set) {
      set = new Set();
      this.handlers.set(type, set);
    }
    set.add(handler as Handler<never>);
    return () => set.delete(handler as Handler<never>);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  /**
   * What the page shows, as `watch` items (clients, client:<id>, timeline, timeline:<id>,
   * models, counts); null for everything. A change reconnects at once, resuming from the last
   * id; the server sends every named client as it is now, so a page that sets its watch
   * before loading (or right after, for rows it just loaded) misses nothing.
   */
  setWatch(items: readonly string[] | null): void {
    const next = items === null ? null : [...new Set(items)].sort().join(',');
    if (next === this.watching) return;
    this.watching = next;
    if (this.running && this.source) {
      this.source.close();
      this.source = null;
      this.connect();
    }
  }

  /** The stream's address: what is watched, and where to resume. */
  url(): string {
    const params = new URLSearchParams();
    if (this.watching !== null) params.set('watch', this.watching);
    if (this.lastPosition !== null) params.set('last_event_id', String(this.lastPosition));
    const query = params.toString();
    const base = this.options.url ?? `${API_BASE}/live`;
    return query ? `${base}${base.includes('?') ? '&' : '?'}${query}` : base;
  }

  stop(): void {
    this.running = false;
    this.clearRetry();
    this.source?.close();
    this.source = null;
    this.setState('stopped');
  }

  private emit<K extends keyof LiveEvents>(type: K, payload: LiveEvents[K], position: number | null) {
    for (const handler of this.handlers.get(type) ?? []) (handler as Handler<K>)(payload, position);
  }

  private connect(): void {
    this.setState(this.everConnected || this.attempt > 0 ? 'reconnecting' : 'connecting');
    this.setRetry(null);
    const create = this.options.createSource ?? ((url: string) => new EventSource(url));
    const source = create(this.url());
    this.source = source;

    source.onopen = () => {
      if (this.source !== source) return;
      // Without a position to resume from, what happened meanwhile is unknown: reload.
      const unknown = (this.everConnected || this.attempt > 0) && this.lastPosition === null;
      this.attempt = 0;
      this.everConnected = true;
      this.setState('live');
      if (unknown) this.emit('resync', null, null);
    };
    source.onerror = () => {
      if (this.source !== source) return;
      // Take over from EventSource's own retry so the delay grows and we can show it.
      source.close();
      this.source = null;
      this.scheduleReconnect();
    };
    for (const type of ['client', 'model', 'timeline', 'counts'] as const) {
      source.addEventListener(type, (event) => this.receive(type, event));
    }
    source.addEventListener('reset', (event) => {
      this.track(event);
      this.emit('resync', null, null);
    });
  }

  private track(event: MessageEvent): number | null {
    const position = event.lastEventId ? Number(event.lastEventId) : null;
    if (position === null || !Number.isSafeInteger(position)) return null;
    this.lastPosition = position;
    return position;
  }

  private receive(type: MessageType, event: MessageEvent): void {
    const position = this.track(event);
    let body: unknown;
    try {
      body = JSON.parse(String(event.data));
    } catch {
      return;
    }
    const parsed = schemas[type].safeParse(body);
    if (!parsed.success) {
      this.options.onInvalid?.(type, parsed.error);
      return;
    }
    this.emit(type, parsed.data as LiveEvents[typeof type], position);
  }

  private scheduleReconnect(): void {
    if (!this.running) return;
    const delay = backoffDelay(this.attempt, this.options.backoff ?? DEFAULT_BACKOFF, this.options.random);
    this.attempt += 1;
    this.setState('reconnecting');
    this.setRetry(delay);
    const setTimer = this.options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.timer = setTimer(() => {
      this.timer = null;
      if (this.running) this.connect();
    }, delay);
  }

  private clearRetry(): void {
    if (this.timer !== null) {
      const clearTimer = this.options.clearTimer ?? ((handle) => clearTimeout(handle as number));
      clearTimer(this.timer);
      this.timer = null;
    }
    this.setRetry(null);
  }
}

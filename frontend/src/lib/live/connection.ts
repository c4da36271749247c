// The dashboard's single subscription to /api/v1/live (Server-Sent Events). It validates each
// message, hands it to subscribers, and reconnects with backoff when the stream drops; after a
// reconnect it announces `resync`, because a fresh EventSource cannot resume by Last-Event-ID
// and pages must reload what they show.
import { writable, type Readable } from 'svelte/store';
import type { z } from 'zod';
import { API_BASE } from '$lib/api/client';
import { clientSummarySchema, liveModelSchema, timelineEntrySchema } from '$lib/api/schemas';
import type { ClientSummary, LiveModel, TimelineEntry } from '$lib/api/schemas';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff';

export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'stopped';

export interface LiveEvents {
  client: ClientSummary;
  model: LiveModel;
  timeline: TimelineEntry;
  /** The server could not resume, or we reconnected: reload everything from the API. */
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

const schemas = { client: clientSummarySchema, model: liveModelSchema, timeline: timelineEntrySchema };

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
    const source = create(this.options.url ?? `${API_BASE}/live`);
    this.source = source;

    source.onopen = () => {
      if (this.source !== source) return;
      const resumed = this.everConnected || this.attempt > 0;
      this.attempt = 0;
      this.everConnected = true;
      this.setState('live');
      if (resumed) this.emit('resync', null, null);
    };
    source.onerror = () => {
      if (this.source !== source) return;
      // Take over from EventSource's own retry so the delay grows and we can show it.
      source.close();
      this.source = null;
      this.scheduleReconnect();
    };
    for (const type of ['client', 'model', 'timeline'] as const) {
      source.addEventListener(type, (event) => this.receive(type, event));
    }
    source.addEventListener('reset', () => this.emit('resync', null, null));
  }

  private receive(type: 'client' | 'model' | 'timeline', event: MessageEvent): void {
    const position = event.lastEventId ? Number(event.lastEventId) : null;
    if (position !== null && !Number.isNaN(position)) this.lastPosition = position;
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

import { get } from 'svelte/store';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Operation } from '$lib/api/schemas';
import { ACTIVE_EVERY_MS, IDLE_EVERY_MS, createOperationsFeed, isActive } from './feed';

function op(states: Operation['targets'][number]['state'][], completed = 10): Operation {
  return {
    operation_id: 'op1',
    action: 'pull',
    model: 'm',
    max_parallel: 4,
    finished: !states.some((s) => s === 'queued' || s === 'running'),
    targets: states.map((state, i) => ({ client_id: `h${i}`, state, completed, total: 100 }))
  };
}

afterEach(() => vi.useRealTimers());

describe('createOperationsFeed', () => {
  it('asks every second while an operation is active, then slows down', async () => {
    vi.useFakeTimers();
    const answers = [[op(['running'], 10)], [op(['running'], 30)], [op(['succeeded'])]];
    let clock = 0;
    const operations = vi.fn(async () => answers.shift() ?? [op(['succeeded'])]);
    const client = vi.fn(async (id: string) => ({ hostname: `host-${id}` }) as never);
    const feed = createOperationsFeed(
      { operations, client },
      () => 'tok',
      () => clock
    );
    await feed.refresh();
    expect(operations).toHaveBeenCalledWith('tok');
    expect(get(feed).items[0]?.targets[0]?.completed).toBe(10);
    expect(get(feed).items[0]?.targets[0]?.hostname).toBe('host-h0');
    clock = 2000;
    await vi.advanceTimersByTimeAsync(ACTIVE_EVERY_MS);
    expect(operations).toHaveBeenCalledTimes(2);
    // 20 bytes in 2 s, 70 left: 7 s
    expect(feed.history.eta('op1/h0')).toBe(7);
    await vi.advanceTimersByTimeAsync(ACTIVE_EVERY_MS);
    expect(operations).toHaveBeenCalledTimes(3);
    await vi.advanceTimersByTimeAsync(ACTIVE_EVERY_MS);
    expect(operations).toHaveBeenCalledTimes(3); // nothing active: next in 15 s
    await vi.advanceTimersByTimeAsync(IDLE_EVERY_MS);
    expect(operations).toHaveBeenCalledTimes(4);
    expect(client).toHaveBeenCalledTimes(1); // each hostname looked up once
    feed.stop();
    await vi.advanceTimersByTimeAsync(IDLE_EVERY_MS * 2);
    expect(operations).toHaveBeenCalledTimes(4);
  });

  it('asks nothing without a token and keeps the error of a failed read', async () => {
    const operations = vi.fn(async (): Promise<Operation[]> => {
      throw new Error('403');
    });
    let token: string | null = null;
    const client = vi.fn(async () => {
      throw new Error('unused');
    });
    const feed = createOperationsFeed({ operations, client }, () => token);
    await feed.refresh();
    expect(operations).not.toHaveBeenCalled();
    token = 'bad';
    await feed.refresh();
    expect(get(feed).error).toBeInstanceOf(Error);
    feed.stop();
  });

  it('calls an operation active while a host is queued or running', () => {
    expect(isActive(op(['queued', 'failed']))).toBe(true);
    expect(isActive(op(['succeeded', 'expired']))).toBe(false);
  });
});

import { render, screen } from '@testing-library/svelte';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import StatusAnnouncer from './StatusAnnouncer.svelte';

const client = (id: string, status: 'online' | 'degraded' | 'offline') => ({
  client_id: id,
  hostname: `host-${id}`,
  status
});

describe('StatusAnnouncer', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('is a polite live region that says nothing on first render', () => {
    render(StatusAnnouncer, { clients: [client('a', 'online')] });
    const region = screen.getByRole('status');
    expect(region).toHaveAttribute('aria-live', 'polite');
    vi.advanceTimersByTime(5000);
    expect(region).toHaveTextContent('');
  });

  it('announces a change after its delay, gathering a burst into one sentence', async () => {
    const view = render(StatusAnnouncer, {
      clients: [client('a', 'online'), client('b', 'online')],
      delayMs: 1000
    });
    const region = screen.getByRole('status');
    await view.rerender({ clients: [client('a', 'degraded'), client('b', 'online')], delayMs: 1000 });
    vi.advanceTimersByTime(500);
    await view.rerender({ clients: [client('a', 'offline'), client('b', 'offline')], delayMs: 1000 });
    expect(region).toHaveTextContent('');
    await vi.advanceTimersByTimeAsync(500);
    expect(region).toHaveTextContent('host-a is now offline. host-b is now offline.');
  });

  it('says nothing when a client is back where it was before the announcement', async () => {
    const view = render(StatusAnnouncer, { clients: [client('a', 'online')], delayMs: 1000 });
    await view.rerender({ clients: [client('a', 'degraded')], delayMs: 1000 });
    await view.rerender({ clients: [client('a', 'online')], delayMs: 1000 });
    await vi.advanceTimersByTimeAsync(1000);
    expect(screen.getByRole('status')).toHaveTextContent('');
  });
});

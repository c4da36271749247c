import { get } from 'svelte/store';
import { describe, expect, it, vi } from 'vitest';
import { timelineEntry } from '$lib/testing/fixtures';
import { createTimelineFeed } from './feed';

describe('timeline feed', () => {
  it('pages backwards and keeps newest first without duplicates', async () => {
    const fetchPage = vi.fn(async (before: number | null) =>
      before === null
        ? { items: [timelineEntry(5), timelineEntry(4)], next_before: 4 }
        : { items: [timelineEntry(4), timelineEntry(3)], next_before: null }
    );
    const feed = createTimelineFeed(fetchPage);
    await feed.load();
    await feed.more();
    expect(fetchPage).toHaveBeenLastCalledWith(4);
    expect(get(feed).entries.map((e) => e.position)).toEqual([5, 4, 3]);
    expect(get(feed).nextBefore).toBeNull();
  });

  it('puts live entries on top once', async () => {
    const feed = createTimelineFeed(async () => ({ items: [timelineEntry(5)], next_before: null }));
    await feed.load();
    feed.add(timelineEntry(6));
    feed.add(timelineEntry(6));
    expect(get(feed).entries.map((e) => e.position)).toEqual([6, 5]);
  });

  it('reports a failed load', async () => {
    const feed = createTimelineFeed(async () => Promise.reject(new Error('boom')));
    await feed.load();
    expect(get(feed).phase).toBe('error');
  });
});

import { describe, expect, it } from 'vitest';
import { createStatusTracker, describeChanges, mergeChanges, type StatusChange } from './status';

const client = (id: string, status: StatusChange['to']) => ({
  client_id: id,
  hostname: `host-${id}`,
  status
});
const change = (id: string, from: StatusChange['from'], to: StatusChange['to']): StatusChange => ({
  client_id: id,
  hostname: `host-${id}`,
  from,
  to
});

describe('status tracker', () => {
  it('reports nothing for clients it sees for the first time', () => {
    const tracker = createStatusTracker();
    expect(tracker.update([client('a', 'online'), client('b', 'offline')])).toEqual([]);
    expect(tracker.update([client('c', 'degraded')])).toEqual([]);
  });

  it('reports a known client whose status changed, once', () => {
    const tracker = createStatusTracker();
    tracker.update([client('a', 'online'), client('b', 'online')]);
    expect(tracker.update([client('a', 'offline'), client('b', 'online')])).toEqual([
      change('a', 'online', 'offline')
    ]);
    expect(tracker.update([client('a', 'offline')])).toEqual([]);
  });

  it('remembers clients that left the page and compares when they come back', () => {
    const tracker = createStatusTracker();
    tracker.update([client('a', 'online')]);
    tracker.update([client('b', 'online')]);
    expect(tracker.update([client('a', 'stopped')])).toEqual([change('a', 'online', 'stopped')]);
  });
});

describe('merging changes not yet announced', () => {
  it('keeps one entry per client, from its first status to its last', () => {
    const merged = mergeChanges([change('a', 'online', 'degraded')], [change('a', 'degraded', 'offline')]);
    expect(merged).toEqual([change('a', 'online', 'offline')]);
  });

  it('drops a client that came back to where it was', () => {
    expect(mergeChanges([change('a', 'online', 'degraded')], [change('a', 'degraded', 'online')])).toEqual(
      []
    );
  });
});

describe('describing changes', () => {
  it('says nothing without changes', () => {
    expect(describeChanges([])).toBe('');
  });

  it('names up to three clients', () => {
    expect(describeChanges([change('a', 'online', 'offline')])).toBe('host-a is now offline.');
    expect(describeChanges([change('a', 'online', 'offline'), change('b', 'offline', 'online')])).toBe(
      'host-a is now offline. host-b is now online.'
    );
  });

  it('counts by status past three, the most common first', () => {
    const changes = [
      change('a', 'online', 'offline'),
      change('b', 'online', 'offline'),
      change('c', 'online', 'offline'),
      change('d', 'offline', 'online'),
      change('e', 'online', 'degraded')
    ];
    expect(describeChanges(changes)).toBe('5 clients changed status: 3 offline, 1 degraded, 1 online.');
  });
});

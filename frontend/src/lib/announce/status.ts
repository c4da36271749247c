// What a screen reader hears when clients change status on the page in view: the changes since
// the last announcement, in one short sentence (a storm of changes becomes counts by status).
import type { Status } from '$lib/api/schemas';

export interface WatchedClient {
  client_id: string;
  hostname: string;
  status: Status;
}

export interface StatusChange {
  client_id: string;
  hostname: string;
  from: Status;
  to: Status;
}

/** Named one by one up to this many changes; past it, counted by status. */
export const NAMED_CHANGES = 3;

/**
 * Remembers the status of every client it has been shown. `update` returns the changes of
 * clients it knew; a client seen for the first time (first load, another page) is no change.
 */
export function createStatusTracker() {
  const known = new Map<string, Status>();
  return {
    update(clients: readonly WatchedClient[]): StatusChange[] {
      const changes: StatusChange[] = [];
      for (const client of clients) {
        const before = known.get(client.client_id);
        if (before !== undefined && before !== client.status) {
          changes.push({
            client_id: client.client_id,
            hostname: client.hostname,
            from: before,
            to: client.status
          });
        }
        known.set(client.client_id, client.status);
      }
      return changes;
    }
  };
}

/** Adds new changes to those not yet announced: one entry per client, from its first status. */
export function mergeChanges(
  pending: readonly StatusChange[],
  changes: readonly StatusChange[]
): StatusChange[] {
  const byClient = new Map(pending.map((change) => [change.client_id, change]));
  for (const change of changes) {
    const earlier = byClient.get(change.client_id);
    byClient.set(change.client_id, earlier ? { ...change, from: earlier.from } : change);
  }
  // A client that went and came back (online -> degraded -> online) has nothing to say.
  return [...byClient.values()].filter((change) => change.from !== change.to);
}

/** "gpu-01 is now offline." or "5 clients changed status: 3 offline, 2 online." */
export function describeChanges(changes: readonly StatusChange[]): string {
  if (changes.length === 0) return '';
  if (changes.length <= NAMED_CHANGES) {
    return changes.map((change) => `${change.hostname} is now ${change.to}.`).join(' ');
  }
  const counts = new Map<Status, number>();
  for (const change of changes) counts.set(change.to, (counts.get(change.to) ?? 0) + 1);
  const parts = [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([status, count]) => `${count} ${status}`);
  return `${changes.length} clients changed status: ${parts.join(', ')}.`;
}

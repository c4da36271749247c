// What a progress bar shows for one host of a fleet operation: bytes, percent and an ETA
// estimated from the last two reports (the server records one per host at most every 5 s).

export interface ProgressSample {
  completed: number | null | undefined;
  total: number | null | undefined;
  /** When the server recorded it, in ms since the epoch. */
  at: number;
}

export function fraction(
  completed: number | null | undefined,
  total: number | null | undefined
): number | null {
  if (completed == null || total == null || total <= 0) return null;
  return Math.min(1, Math.max(0, completed / total));
}

/** Seconds left at the rate between two samples of the same download; null when unknown. */
export function etaSeconds(previous: ProgressSample | null, latest: ProgressSample): number | null {
  if (!previous || latest.total == null || latest.completed == null || previous.completed == null) {
    return null;
  }
  if (previous.total !== latest.total) return null; // another layer: the rate says nothing
  const seconds = (latest.at - previous.at) / 1000;
  const bytes = latest.completed - previous.completed;
  if (seconds <= 0 || bytes <= 0) return null;
  return Math.max(0, Math.round((latest.total - latest.completed) / (bytes / seconds)));
}

/** Keeps the last two samples per host, so the ETA follows the current rate. */
export class ProgressHistory {
  #samples = new Map<string, [ProgressSample | null, ProgressSample]>();

  record(key: string, sample: ProgressSample): void {
    const known = this.#samples.get(key);
    if (known && known[1].at === sample.at && known[1].completed === sample.completed) return;
    this.#samples.set(key, [known ? known[1] : null, sample]);
  }

  eta(key: string): number | null {
    const known = this.#samples.get(key);
    return known ? etaSeconds(known[0], known[1]) : null;
  }
}

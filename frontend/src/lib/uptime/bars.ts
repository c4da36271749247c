// Turns uptime buckets into bar segments and tooltip text. Up, degraded, down and unknown
// stay separate; time before registration (nothing counted) is "no data", not downtime.
import type { UptimeBucket } from '$lib/api/schemas';
import { formatDuration } from '$lib/format/time';
import { formatPercent } from '$lib/format/numbers';

export const CATEGORIES = ['up', 'degraded', 'down', 'unknown'] as const;
export type Category = (typeof CATEGORIES)[number];

export interface Bar {
  start: string;
  end: string;
  seconds: Record<Category, number>;
  /** Fractions of the bucket's counted time, in CATEGORIES order; all zero when nothing was counted. */
  shares: Record<Category, number>;
  counted: number;
  /** up / (up + degraded + down); unknown time (server not running) is left out. */
  availability: number | null;
  /** The worst category present, which decides the bar's headline. */
  worst: Category | 'none';
}

export function toBar(bucket: UptimeBucket): Bar {
  const seconds: Record<Category, number> = {
    up: bucket.up_s,
    degraded: bucket.degraded_s,
    down: bucket.down_s,
    unknown: bucket.unknown_s
  };
  const counted = seconds.up + seconds.degraded + seconds.down + seconds.unknown;
  const share = (n: number) => (counted > 0 ? n / counted : 0);
  const known = seconds.up + seconds.degraded + seconds.down;
  const worst: Bar['worst'] =
    seconds.down > 0
      ? 'down'
      : seconds.degraded > 0
        ? 'degraded'
        : seconds.unknown > 0
          ? 'unknown'
          : seconds.up > 0
            ? 'up'
            : 'none';
  return {
    start: bucket.start,
    end: bucket.end,
    seconds,
    shares: {
      up: share(seconds.up),
      degraded: share(seconds.degraded),
      down: share(seconds.down),
      unknown: share(seconds.unknown)
    },
    counted,
    availability: known > 0 ? seconds.up / known : null,
    worst
  };
}

/** Availability over many buckets, with the same rule as a single bar. */
export function overallAvailability(buckets: readonly UptimeBucket[]): number | null {
  let up = 0;
  let known = 0;
  for (const b of buckets) {
    up += b.up_s;
    known += b.up_s + b.degraded_s + b.down_s;
  }
  return known > 0 ? up / known : null;
}

const CATEGORY_NAMES: Record<Category, string> = {
  up: 'Up',
  degraded: 'Degraded',
  down: 'Down',
  unknown: 'Unknown'
};

/** The categories present in a bar with their durations, e.g. [{ name: 'Up', duration: '23 h 10 min' }]. */
export function breakdown(bar: Bar): { category: Category; name: string; duration: string }[] {
  return CATEGORIES.filter((c) => bar.seconds[c] > 0).map((c) => ({
    category: c,
    name: CATEGORY_NAMES[c],
    duration: formatDuration(bar.seconds[c])
  }));
}

/** One sentence for tooltips and screen readers: "99.86 % available · Up 23 h 58 min, Down 2 min". */
export function describeBar(bar: Bar): string {
  if (bar.counted === 0) return 'No data';
  const parts = breakdown(bar).map((b) => `${b.name} ${b.duration}`);
  return `${formatPercent(bar.availability)} available · ${parts.join(', ')}`;
}

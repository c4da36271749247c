// Human-readable times: "12 s ago", "in 4 min", durations and absolute timestamps.

const UNITS: [limitSeconds: number, divisor: number, unit: string][] = [
  [60, 1, 's'],
  [3600, 60, 'min'],
  [86400, 3600, 'h'],
  [86400 * 30, 86400, 'd'],
  [86400 * 365, 86400 * 30, 'mo'],
  [Infinity, 86400 * 365, 'y']
];

function toMs(value: string | number | Date): number {
  if (value instanceof Date) return value.getTime();
  return typeof value === 'number' ? value : Date.parse(value);
}

/** A compact span such as "12 s", "4 min", "3 h", "2 d" (floors to whole units). */
export function formatSpan(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  for (const [limit, divisor, unit] of UNITS) {
    if (s < limit) return `${Math.floor(s / divisor)} ${unit}`;
  }
  return `${s} s`;
}

/** "12 s ago" for the past, "in 4 min" for the future, "just now" within a second; "never" for null. */
export function relativeTime(value: string | number | Date | null | undefined, now: number): string {
  if (value === null || value === undefined) return 'never';
  const ms = toMs(value);
  if (Number.isNaN(ms)) return '—';
  const delta = (now - ms) / 1000;
  if (Math.abs(delta) < 1) return 'just now';
  return delta > 0 ? `${formatSpan(delta)} ago` : `in ${formatSpan(-delta)}`;
}

/** A longer duration for tooltips: "2 h 5 min", "45 s", "0 s". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  const parts: string[] = [];
  if (d) parts.push(`${d} d`);
  if (h) parts.push(`${h} h`);
  if (m && !d) parts.push(`${m} min`);
  if (rest && !d && !h) parts.push(`${rest} s`);
  return parts.length ? parts.join(' ') : '0 s';
}

const pad = (n: number) => String(n).padStart(2, '0');

/** Local absolute time "2026-11-27 17:39:09" (local zone, ISO-like, sortable). */
export function formatDateTime(value: string | number | Date | null | undefined): string {
  if (value === null || value === undefined) return '—';
  const date = new Date(toMs(value));
  if (Number.isNaN(date.getTime())) return '—';
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** The value of an <input type="datetime-local"> for a moment, in local time. */
export function toLocalInput(value: number | Date): string {
  const date = new Date(toMs(value));
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** An <input type="datetime-local"> value (local time) as an ISO-8601 UTC string; null if empty/invalid. */
export function fromLocalInput(value: string): string | null {
  if (!value) return null;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

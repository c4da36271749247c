// Sizes, percentages and digests as the dashboard prints them.

const BYTE_UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/** Decimal units like Ollama's own CLI: 4.7 GB, 638 MB. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || Number.isNaN(bytes)) return '—';
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < BYTE_UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${BYTE_UNITS[unit]}`;
}

/** A 0..1 fraction as "99.95 %"; null (nothing counted) as "—". */
export function formatPercent(fraction: number | null | undefined, digits = 2): string {
  if (fraction === null || fraction === undefined || Number.isNaN(fraction)) return '—';
  const pct = fraction * 100;
  // Never round a partial outage up to a perfect 100 %.
  const shown = pct < 100 && Number(pct.toFixed(digits)) === 100 ? 100 - 10 ** -digits : pct;
  return `${shown.toFixed(digits)} %`;
}

/** The short form of a sha256 digest: the first 12 hex digits, as `ollama list` prints. */
export function shortDigest(digest: string | null | undefined): string {
  if (!digest) return '—';
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

import { describe, expect, it } from 'vitest';
import { formatBytes, formatPercent, shortDigest } from './numbers';

describe('numbers', () => {
  it('formats sizes in decimal units', () => {
    expect(formatBytes(4_920_753_328)).toBe('4.9 GB');
    expect(formatBytes(274_302_450)).toBe('274 MB');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(null)).toBe('—');
  });

  it('never rounds a partial outage up to 100 %', () => {
    expect(formatPercent(1)).toBe('100.00 %');
    expect(formatPercent(0.99999)).toBe('99.99 %');
    expect(formatPercent(0.5)).toBe('50.00 %');
    expect(formatPercent(null)).toBe('—');
  });

  it('shortens digests like ollama list', () => {
    expect(shortDigest('sha256:42182419e9508c30c4b1')).toBe('42182419e950');
  });
});

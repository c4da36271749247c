import { describe, expect, it } from 'vitest';
import { formatDuration, formatSpan, fromLocalInput, relativeTime, toLocalInput } from './time';

const NOW = Date.parse('2026-11-27T12:00:00Z');

describe('relativeTime', () => {
  it.each([
    ['2026-11-27T11:59:48Z', '12 s ago'],
    ['2026-11-27T11:59:00Z', '1 min ago'],
    ['2026-11-27T11:55:30Z', '4 min ago'],
    ['2026-11-27T09:00:00Z', '3 h ago'],
    ['2026-11-25T12:00:00Z', '2 d ago'],
    ['2026-09-01T12:00:00Z', '2 mo ago'],
    ['2024-11-01T12:00:00Z', '2 y ago'],
    ['2026-11-27T12:04:00Z', 'in 4 min'],
    ['2026-11-27T11:59:59.500Z', 'just now']
  ])('%s -> %s', (at, expected) => {
    expect(relativeTime(at, NOW)).toBe(expected);
  });

  it('says never for null and a dash for garbage', () => {
    expect(relativeTime(null, NOW)).toBe('never');
    expect(relativeTime('not a time', NOW)).toBe('—');
  });

  it('accepts +00:00 offsets and microseconds', () => {
    expect(relativeTime('2026-11-27T11:59:30.123456+00:00', NOW)).toBe('29 s ago');
  });
});

describe('durations', () => {
  it('formats compact spans', () => {
    expect(formatSpan(59.9)).toBe('59 s');
    expect(formatSpan(3600)).toBe('1 h');
  });

  it('formats tooltip durations', () => {
    expect(formatDuration(0)).toBe('0 s');
    expect(formatDuration(45)).toBe('45 s');
    expect(formatDuration(3725)).toBe('1 h 2 min');
    expect(formatDuration(90061)).toBe('1 d 1 h');
  });
});

describe('datetime-local inputs', () => {
  it('round-trips a moment through local time', () => {
    const at = new Date('2026-11-27T12:34:56Z');
    expect(fromLocalInput(toLocalInput(at))).toBe('2026-11-27T12:34:56.000Z');
    expect(fromLocalInput('')).toBeNull();
  });
});

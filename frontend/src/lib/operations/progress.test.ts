import { describe, expect, it } from 'vitest';
import { ProgressHistory, etaSeconds, fraction } from './progress';

describe('fraction', () => {
  it('is completed over total, within 0..1', () => {
    expect(fraction(50, 200)).toBe(0.25);
    expect(fraction(300, 200)).toBe(1);
  });
  it('is unknown without a total', () => {
    expect(fraction(10, null)).toBeNull();
    expect(fraction(10, 0)).toBeNull();
    expect(fraction(null, 100)).toBeNull();
  });
});

describe('etaSeconds', () => {
  it('divides what is left by the rate between two samples', () => {
    // 100 bytes in 5 s = 20 B/s; 400 left -> 20 s
    expect(
      etaSeconds({ completed: 500, total: 1000, at: 0 }, { completed: 600, total: 1000, at: 5000 })
    ).toBe(20);
  });
  it('is unknown with one sample, no progress, or a new layer', () => {
    expect(etaSeconds(null, { completed: 1, total: 2, at: 0 })).toBeNull();
    expect(etaSeconds({ completed: 5, total: 10, at: 0 }, { completed: 5, total: 10, at: 1000 })).toBeNull();
    expect(etaSeconds({ completed: 5, total: 10, at: 0 }, { completed: 6, total: 99, at: 1000 })).toBeNull();
  });
});

describe('ProgressHistory', () => {
  it('keeps the last two samples per host and ignores repeats', () => {
    const history = new ProgressHistory();
    history.record('a', { completed: 0, total: 100, at: 0 });
    expect(history.eta('a')).toBeNull();
    history.record('a', { completed: 10, total: 100, at: 1000 });
    history.record('a', { completed: 10, total: 100, at: 1000 });
    expect(history.eta('a')).toBe(9);
    history.record('a', { completed: 40, total: 100, at: 2000 });
    expect(history.eta('a')).toBe(2);
    expect(history.eta('b')).toBeNull();
  });
});

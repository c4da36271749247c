import { describe, expect, it } from 'vitest';
import { breakdown, describeBar, overallAvailability, toBar } from './bars';

const bucket = (up: number, degraded = 0, down = 0, unknown = 0) => ({
  start: '2026-11-27T10:00:00Z',
  end: '2026-11-27T11:00:00Z',
  up_s: up,
  degraded_s: degraded,
  down_s: down,
  unknown_s: unknown
});

describe('uptime bars', () => {
  it('keeps up, degraded, down and unknown apart', () => {
    const bar = toBar(bucket(1800, 600, 600, 600));
    expect(bar.shares).toEqual({ up: 0.5, degraded: 1 / 6, down: 1 / 6, unknown: 1 / 6 });
    expect(bar.worst).toBe('down');
    expect(breakdown(bar).map((b) => b.name)).toEqual(['Up', 'Degraded', 'Down', 'Unknown']);
  });

  it('leaves unknown time out of availability', () => {
    const bar = toBar(bucket(2700, 0, 0, 900));
    expect(bar.availability).toBe(1);
    expect(bar.worst).toBe('unknown');
  });

  it('treats an empty bucket as no data, not downtime', () => {
    const bar = toBar(bucket(0));
    expect(bar.availability).toBeNull();
    expect(bar.worst).toBe('none');
    expect(describeBar(bar)).toBe('No data');
  });

  it('describes a bar for tooltips and screen readers', () => {
    expect(describeBar(toBar(bucket(3480, 0, 120)))).toBe('96.67 % available · Up 58 min, Down 2 min');
  });

  it('computes availability over a range', () => {
    expect(overallAvailability([bucket(3600), bucket(1800, 0, 1800), bucket(0)])).toBe(0.75);
    expect(overallAvailability([bucket(0)])).toBeNull();
  });
});

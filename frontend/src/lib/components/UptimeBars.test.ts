import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import { toBar } from '$lib/uptime/bars';
import UptimeBars from './UptimeBars.svelte';

const hour = (h: number, up: number, down: number) =>
  toBar({
    start: `2026-11-27T${String(h).padStart(2, '0')}:00:00Z`,
    end: `2026-11-27T${String(h + 1).padStart(2, '0')}:00:00Z`,
    up_s: up,
    degraded_s: 0,
    down_s: down,
    unknown_s: 0
  });

describe('UptimeBars', () => {
  const bars = [hour(9, 0, 0), hour(10, 3480, 120), hour(11, 3600, 0)];

  it('labels every bar with its split, so it reads without colour', () => {
    render(UptimeBars, { bars, bucket: 'hour', label: 'Last 24 hours' });
    const items = screen.getAllByRole('button');
    expect(items).toHaveLength(3);
    expect(items[0]).toHaveAccessibleName(/No data/);
    expect(items[1]).toHaveAccessibleName(/96.67 % available · Up 58 min, Down 2 min/);
  });

  it('has one tab stop and moves with the arrow keys, showing a tooltip', async () => {
    render(UptimeBars, { bars, bucket: 'hour', label: 'Last 24 hours' });
    const items = screen.getAllByRole('button');
    expect(items.map((b) => b.tabIndex)).toEqual([-1, -1, 0]);
    items[2]!.focus();
    await fireEvent.keyDown(items[2]!, { key: 'ArrowLeft' });
    expect(document.activeElement).toBe(items[1]);
    expect(screen.getByRole('tooltip')).toHaveTextContent('Down');
    expect(screen.getByRole('tooltip')).toHaveTextContent('2 min');
  });
});

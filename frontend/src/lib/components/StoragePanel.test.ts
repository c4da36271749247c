import { render, screen, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import type { ArchivedRange } from '$lib/audit/storage';
import { compactedStorage, freshStorage } from '$lib/testing/fixtures';
import StoragePanel from './StoragePanel.svelte';

const NOW = Date.parse('2026-11-28T12:00:00Z');

const EMPTY = freshStorage(1234);
const COMPACTED = compactedStorage();

const RANGES: ArchivedRange[] = [
  {
    position: 240_000,
    at: '2026-11-28T09:00:00+00:00',
    first_position: 100_000,
    last_position: 190_000,
    removed: 80_000,
    segment_id: '00000002-000000100000'
  },
  {
    position: 120_000,
    at: '2026-11-27T09:00:00+00:00',
    first_position: 3,
    last_position: 99_000,
    removed: 100_000,
    segment_id: '00000001-000000000003'
  }
];

describe('StoragePanel', () => {
  it('shows a log that was never compacted, and says its sizes are not measured yet', () => {
    render(StoragePanel, { storage: EMPTY, ranges: [], now: NOW });
    expect(screen.getByTestId('storage-log')).toHaveTextContent('not measured yet');
    expect(screen.getByTestId('storage-log')).toHaveTextContent('head at position 1,234');
    expect(screen.getByTestId('storage-archive')).toHaveTextContent('0 events in 0 segments');
    expect(screen.getByTestId('storage-last-compaction')).toHaveTextContent('none yet');
    expect(screen.getByTestId('storage-last-compaction')).toHaveTextContent('kept live for 14 d');
    expect(screen.getByTestId('no-archived-ranges')).toHaveTextContent('Nothing archived yet');
    expect(screen.queryByRole('table', { name: 'Archived ranges' })).toBeNull();
  });

  it('shows sizes, the last compaction and each archived range', () => {
    render(StoragePanel, { storage: COMPACTED, ranges: RANGES, more: true, now: NOW });
    expect(screen.getByTestId('storage-log')).toHaveTextContent('5.4 MB');
    expect(screen.getByTestId('storage-archive')).toHaveTextContent('1.2 MB');
    expect(screen.getByTestId('storage-archive')).toHaveTextContent('180,000 events in 2 segments');
    expect(screen.getByTestId('storage-archive')).toHaveTextContent('positions 3–190,000');
    const last = screen.getByTestId('storage-last-compaction');
    expect(last).toHaveTextContent('3 h ago');
    expect(last).toHaveTextContent('80,000 events moved to segment 00000002-000000100000');
    const rows = within(screen.getByRole('table', { name: 'Archived ranges' })).getAllByRole('row');
    expect(rows).toHaveLength(3);
    expect(rows[1]).toHaveTextContent('100,000–190,000');
    expect(rows[2]).toHaveTextContent('3–99,000');
    expect(rows[2]).toHaveTextContent('00000001-000000000003');
    expect(screen.getByText(/The 2 latest compactions/)).toBeInTheDocument();
  });

  it('claims no verify it does not know of', () => {
    render(StoragePanel, { storage: COMPACTED, ranges: RANGES, now: NOW });
    const verify = screen.getByTestId('storage-last-verify');
    expect(verify).toHaveTextContent('not recorded by the server');
    expect(verify).toHaveTextContent('obt archive verify');
  });

  it('says so when segments exist that no LogCompacted records', () => {
    render(StoragePanel, { storage: COMPACTED, ranges: [], now: NOW });
    expect(screen.getByTestId('no-archived-ranges')).toHaveTextContent('no LogCompacted event records them');
  });
});

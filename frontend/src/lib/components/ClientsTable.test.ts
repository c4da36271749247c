import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import { clientSummary } from '$lib/testing/fixtures';
import ClientsTable from './ClientsTable.svelte';

const NOW = Date.parse('2026-11-27T12:00:12Z');
const rows = [
  clientSummary({ client_id: 'a', hostname: 'alpha', status: 'degraded', labels: { env: 'prod' } }),
  clientSummary({ client_id: 'b', hostname: 'bravo', status: 'online', last_seen: null, uptime_24h: null })
];

describe('ClientsTable', () => {
  it('renders one row per client with hostname, status word and last seen', () => {
    render(ClientsTable, { rows, now: NOW, sort: 'status', direction: 'asc', onsort: () => {} });
    const alpha = screen.getByRole('row', { name: /alpha/ });
    expect(within(alpha).getByTestId('status-badge')).toHaveTextContent('degraded');
    expect(within(alpha).getByText('12 s ago')).toBeInTheDocument();
    expect(within(alpha).getByText('env=prod')).toBeInTheDocument();
    expect(within(alpha).getByRole('link', { name: 'alpha' })).toHaveAttribute('href', '/clients/a');
    const bravo = screen.getByRole('row', { name: /bravo/ });
    expect(within(bravo).getByText('never')).toBeInTheDocument();
    expect(within(bravo).getByText('—')).toBeInTheDocument();
  });

  it('marks the sorted column and asks to sort on click', async () => {
    const onsort = vi.fn();
    render(ClientsTable, { rows, now: NOW, sort: 'hostname', direction: 'desc', onsort });
    expect(screen.getByRole('columnheader', { name: /Host/ })).toHaveAttribute('aria-sort', 'descending');
    expect(screen.getByRole('columnheader', { name: /Status/ })).toHaveAttribute('aria-sort', 'none');
    await fireEvent.click(screen.getByRole('button', { name: /Last seen/ }));
    expect(onsort).toHaveBeenCalledWith('last_seen');
  });
});

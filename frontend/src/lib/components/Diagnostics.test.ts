import { render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import { clientSummarySchema } from '$lib/api/schemas';
import { clientSummary } from '$lib/testing/fixtures';
import Diagnostics from './Diagnostics.svelte';

const NOW = Date.parse('2026-11-27T12:00:00Z');

describe('Diagnostics', () => {
  it('shows the live channel, since when, and the reconnects of the last 24 h', () => {
    render(Diagnostics, { client: clientSummary({ reconnects_24h: 3 }), now: NOW });
    expect(screen.getByTestId('transport')).toHaveTextContent('live channel (WebSocket)');
    expect(screen.getByTestId('transport')).not.toHaveTextContent('connection lost');
    expect(screen.getByTestId('reconnects')).toHaveTextContent('3');
    expect(screen.getByText('3 h ago', { exact: false })).toBeInTheDocument();
  });

  it('says "connection lost" at once when the channel dropped', () => {
    const client = clientSummary({
      transport: null,
      connected_since: null,
      connection_lost: true,
      last_disconnect: { at: '2026-11-27T11:59:00Z', reason: 'error' }
    });
    render(Diagnostics, { client, now: NOW });
    expect(screen.getByTestId('transport')).toHaveTextContent('not connected');
    expect(screen.getByTestId('transport')).toHaveTextContent('connection lost');
    expect(screen.getByText(/connection lost ·/)).toBeInTheDocument();
  });

  it('reads a server without the channel as not connected, never as a failure', () => {
    const { transport, connected_since, connection_lost, reconnects_24h, last_disconnect, ...old } =
      clientSummary();
    void [transport, connected_since, connection_lost, reconnects_24h, last_disconnect];
    const parsed = clientSummarySchema.parse(old);
    expect(parsed.transport).toBeNull();
    expect(parsed.reconnects_24h).toBe(0);
  });
});

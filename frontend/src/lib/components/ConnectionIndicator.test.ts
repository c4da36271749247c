import { render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import ConnectionIndicator from './ConnectionIndicator.svelte';

describe('ConnectionIndicator', () => {
  it('says Live when connected', () => {
    render(ConnectionIndicator, { state: 'live' });
    expect(screen.getByRole('status')).toHaveTextContent('Live');
  });

  it('says Reconnecting with the retry delay', () => {
    render(ConnectionIndicator, { state: 'reconnecting', retryInMs: 4000 });
    const status = screen.getByRole('status');
    expect(status).toHaveTextContent('Reconnecting');
    expect(status).toHaveTextContent('retrying in 4 s');
  });
});

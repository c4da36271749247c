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
    expect(screen.getByRole('status')).toHaveTextContent('Reconnecting');
    expect(screen.getByTestId('connection-indicator')).toHaveTextContent('retrying in 4 s');
  });

  it('announces a change of state, not each new retry delay', async () => {
    const view = render(ConnectionIndicator, { state: 'live' });
    const status = screen.getByRole('status');
    expect(status).toHaveAttribute('aria-live', 'polite');
    await view.rerender({ state: 'reconnecting', retryInMs: 4000 });
    const announced = status.textContent;
    expect(announced).toContain('Connection lost');
    await view.rerender({ state: 'reconnecting', retryInMs: 8000 });
    expect(screen.getByTestId('connection-indicator')).toHaveTextContent('retrying in 8 s');
    expect(status.textContent).toBe(announced);
    await view.rerender({ state: 'live', retryInMs: null });
    expect(status).toHaveTextContent('Live');
  });
});

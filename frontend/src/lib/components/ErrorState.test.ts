import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import { ApiError, NetworkError, SchemaError } from '$lib/api/errors';
import ErrorState from './ErrorState.svelte';

describe('ErrorState', () => {
  it('names the field of a schema mismatch', () => {
    render(ErrorState, { error: new SchemaError('/clients', 'items.0.status', 'Invalid option') });
    const alert = screen.getByRole('alert');
    expect(alert).toHaveTextContent('does not understand');
    expect(alert).toHaveTextContent('items.0.status');
  });

  it('shows the server detail and code of an API error', () => {
    render(ErrorState, { error: new ApiError(503, 'store_unavailable', 'SQLite is locked', '/clients') });
    expect(screen.getByRole('alert')).toHaveTextContent('The server answered 503');
    expect(screen.getByRole('alert')).toHaveTextContent('SQLite is locked (store_unavailable)');
  });

  it('offers a retry for network errors', async () => {
    const onretry = vi.fn();
    render(ErrorState, { error: new NetworkError('/clients'), onretry });
    expect(screen.getByRole('alert')).toHaveTextContent('cannot be reached');
    await fireEvent.click(screen.getByRole('button', { name: /Retry/ }));
    expect(onretry).toHaveBeenCalledOnce();
  });
});

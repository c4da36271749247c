import { render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import { STATUSES } from '$lib/api/schemas';
import StatusBadge from './StatusBadge.svelte';

describe('StatusBadge', () => {
  it.each(STATUSES)('shows the word %s, not only a colour', (status) => {
    render(StatusBadge, { status });
    const badge = screen.getByTestId('status-badge');
    expect(badge).toHaveTextContent(status);
    expect(badge.querySelector('svg')).not.toBeNull();
    expect(badge).toHaveAttribute('title');
  });
});

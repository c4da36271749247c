import { render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import EmptyFleet from './EmptyFleet.svelte';

describe('EmptyFleet', () => {
  it('shows the exact agent command and where the token is', () => {
    render(EmptyFleet, {
      info: {
        version: '0.1.0',
        server_time: '2026-11-27T12:00:00Z',
        heartbeat_interval_s: 10,
        timeout_s: 30,
        store: 'sqlite',
        enrollment_token_hint: 'In data/enrollment_token on the server',
        agent_command: 'OBT_SERVER_URL=http://10.0.0.5:8881 OBT_ENROLLMENT_TOKEN=... obt-agent'
      }
    });
    expect(screen.getByRole('heading', { name: /No Ollama machines connected/ })).toBeInTheDocument();
    expect(screen.getByTestId('agent-command')).toHaveTextContent('OBT_SERVER_URL=http://10.0.0.5:8881');
    expect(screen.getByTestId('enrollment-hint')).toHaveTextContent('data/enrollment_token');
    expect(screen.getByRole('button', { name: /Copy/ })).toBeInTheDocument();
  });
});

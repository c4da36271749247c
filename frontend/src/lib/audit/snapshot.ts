// "State as of": replay a client or the whole fleet to a chosen moment through the API.
import type { Api } from '$lib/api/client';
import type { ClientDetail } from '$lib/api/schemas';

export interface Snapshot {
  /** The moment asked for, and the last event position the replay used. */
  at: string;
  position: number;
  scope: 'fleet' | 'client';
  clients: ClientDetail[];
  /** Client scope only: the client did not exist yet at that moment. */
  missing: boolean;
}

export async function loadSnapshot(
  api: Pick<Api, 'clientState' | 'fleetState'>,
  scope: string,
  at: string,
  signal?: AbortSignal
): Promise<Snapshot> {
  if (scope === '') {
    const state = await api.fleetState(at, signal);
    return { at: state.at, position: state.position, scope: 'fleet', clients: state.clients, missing: false };
  }
  const state = await api.clientState(scope, at, signal);
  return {
    at: state.at,
    position: state.position,
    scope: 'client',
    clients: state.client ? [state.client] : [],
    missing: state.client === null
  };
}

// The root layout owns one live connection and one fleet store; pages reach them via context.
import { getContext, setContext } from 'svelte';
import type { Api } from './api/client';
import type { FleetStore } from './fleet/store';
import type { LiveConnection } from './live/connection';

export interface AppContext {
  api: Api;
  live: LiveConnection;
  fleet: FleetStore;
}

const KEY = Symbol('obt-app');

export const provideApp = (context: AppContext) => setContext(KEY, context);

export function useApp(): AppContext {
  const context = getContext<AppContext | undefined>(KEY);
  if (!context) throw new Error('useApp() called outside the root layout');
  return context;
}

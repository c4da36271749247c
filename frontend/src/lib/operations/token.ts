// The admin token for fleet operations: asked for once, kept in sessionStorage (gone when the
// tab closes), never in localStorage or the URL. Pages read it as a store.
import { writable, type Readable } from 'svelte/store';

export const TOKEN_KEY = 'obt.admin-token';

export interface AdminToken extends Readable<string | null> {
  set(token: string): void;
  clear(): void;
}

type SessionStore = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;

export function createAdminToken(storage: SessionStore): AdminToken {
  const initial = storage.getItem(TOKEN_KEY);
  const store = writable<string | null>(initial && initial.trim() ? initial : null);
  return {
    subscribe: store.subscribe,
    set(token: string) {
      const value = token.trim();
      if (!value) return;
      storage.setItem(TOKEN_KEY, value);
      store.set(value);
    },
    clear() {
      storage.removeItem(TOKEN_KEY);
      store.set(null);
    }
  };
}

/** Why an operation control is disabled, or null when it may be used. */
export function disabledReason(token: string | null): string | null {
  return token ? null : 'Needs the admin token: enter it under "Admin token" to pull or remove models.';
}

let shared: AdminToken | null = null;

/** The dashboard's one admin token (created on first use, from this tab's sessionStorage). */
export function adminToken(): AdminToken {
  shared ??= createAdminToken(window.sessionStorage);
  return shared;
}

// Dark by default; the user's choice persists in localStorage (read before paint in app.html).
import { writable } from 'svelte/store';

export type Theme = 'dark' | 'light';
export const THEME_KEY = 'obt-theme';

export function readTheme(storage: Pick<Storage, 'getItem'> | undefined): Theme {
  try {
    return storage?.getItem(THEME_KEY) === 'light' ? 'light' : 'dark';
  } catch {
    return 'dark';
  }
}

export function applyTheme(theme: Theme, root: HTMLElement, storage?: Pick<Storage, 'setItem'>): void {
  root.classList.toggle('dark', theme === 'dark');
  try {
    storage?.setItem(THEME_KEY, theme);
  } catch {
    // Private mode or storage disabled: the toggle still works for this page.
  }
}

export function createThemeStore(root: HTMLElement, storage: Storage | undefined) {
  const store = writable<Theme>(readTheme(storage));
  return {
    subscribe: store.subscribe,
    toggle() {
      store.update((current) => {
        const next: Theme = current === 'dark' ? 'light' : 'dark';
        applyTheme(next, root, storage);
        return next;
      });
    }
  };
}

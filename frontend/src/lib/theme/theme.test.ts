import { get } from 'svelte/store';
import { describe, expect, it } from 'vitest';
import { createThemeStore, readTheme, THEME_KEY } from './theme';

describe('theme', () => {
  it('is dark unless light was chosen', () => {
    expect(readTheme(undefined)).toBe('dark');
    expect(readTheme({ getItem: () => 'light' })).toBe('light');
    expect(readTheme({ getItem: () => 'purple' })).toBe('dark');
  });

  it('toggles the class on <html> and persists the choice', () => {
    const root = document.createElement('html');
    root.classList.add('dark');
    localStorage.clear();
    const theme = createThemeStore(root, localStorage);
    theme.toggle();
    expect(get(theme)).toBe('light');
    expect(root.classList.contains('dark')).toBe(false);
    expect(localStorage.getItem(THEME_KEY)).toBe('light');
    theme.toggle();
    expect(root.classList.contains('dark')).toBe(true);
    expect(localStorage.getItem(THEME_KEY)).toBe('dark');
  });
});

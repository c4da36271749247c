import { get } from 'svelte/store';
import { describe, expect, it } from 'vitest';
import { TOKEN_KEY, createAdminToken, disabledReason } from './token';

function memoryStorage(initial: Record<string, string> = {}) {
  const data = new Map(Object.entries(initial));
  return {
    data,
    getItem: (key: string) => data.get(key) ?? null,
    setItem: (key: string, value: string) => void data.set(key, value),
    removeItem: (key: string) => void data.delete(key)
  };
}

describe('createAdminToken', () => {
  it('starts from what the session holds and keeps what is set', () => {
    const storage = memoryStorage({ [TOKEN_KEY]: 'abc' });
    const token = createAdminToken(storage);
    expect(get(token)).toBe('abc');
    token.set('  xyz ');
    expect(get(token)).toBe('xyz');
    expect(storage.data.get(TOKEN_KEY)).toBe('xyz');
    token.clear();
    expect(get(token)).toBeNull();
    expect(storage.data.has(TOKEN_KEY)).toBe(false);
  });
  it('ignores a blank token', () => {
    const token = createAdminToken(memoryStorage());
    token.set('   ');
    expect(get(token)).toBeNull();
  });
  it('says why controls are disabled without a token', () => {
    expect(disabledReason(null)).toMatch(/admin token/);
    expect(disabledReason('t')).toBeNull();
  });
});

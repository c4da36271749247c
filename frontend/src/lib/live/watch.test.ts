import { describe, expect, it } from 'vitest';
import { MAX_WATCHED_ROWS, watchFor } from './watch';

describe('watchFor', () => {
  it('watches the fleet rows in view, the fleet timeline and the counts', () => {
    expect(watchFor({ pathname: '/', rows: [{ client_id: 'a' }, { client_id: 'b' }] })).toEqual([
      'counts',
      'timeline',
      'client:a',
      'client:b'
    ]);
    expect(watchFor({ pathname: '/' })).toEqual(['counts', 'timeline']);
  });

  it('caps the rows watched by id', () => {
    const rows = Array.from({ length: MAX_WATCHED_ROWS + 50 }, (_, i) => ({ client_id: `c${i}` }));
    expect(watchFor({ pathname: '/', rows })).toHaveLength(MAX_WATCHED_ROWS + 2);
  });

  it('watches one client and its timeline on its page', () => {
    expect(watchFor({ pathname: '/clients/gpu-01.lab/' })).toEqual([
      'counts',
      'client:gpu-01.lab',
      'timeline:gpu-01.lab'
    ]);
  });

  it('watches the models on the models page, and only the counts elsewhere', () => {
    expect(watchFor({ pathname: '/models' })).toEqual(['counts', 'models']);
    expect(watchFor({ pathname: '/audit' })).toEqual(['counts']);
  });
});

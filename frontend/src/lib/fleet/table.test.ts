import { describe, expect, it } from 'vitest';
import { DEFAULT_QUERY, pageRequest, sameQuery, type TableQuery } from './table';

describe('fleet table query', () => {
  it('asks the server for the first page, sorted by status', () => {
    expect(pageRequest(DEFAULT_QUERY)).toEqual({
      sort: 'status',
      order: 'asc',
      statuses: [],
      labels: [],
      search: '',
      limit: 100,
      cursor: null
    });
  });

  it('maps columns to server fields and passes filters and the cursor', () => {
    const query: TableQuery = {
      search: '  gpu 0.1 ',
      statuses: ['offline', 'degraded'],
      labels: ['env=prod'],
      sort: 'version',
      direction: 'desc'
    };
    expect(pageRequest(query, 'abc', 25)).toEqual({
      sort: 'ollama_version',
      order: 'desc',
      statuses: ['offline', 'degraded'],
      labels: ['env=prod'],
      search: 'gpu 0.1',
      limit: 25,
      cursor: 'abc'
    });
    expect(pageRequest({ ...query, sort: 'uptime', direction: 'asc' }).sort).toBe('uptime_24h');
    expect(pageRequest({ ...query, sort: 'models' }).sort).toBe('models_count');
    expect(pageRequest({ ...query, sort: 'loaded' }).sort).toBe('loaded_count');
  });

  it('shows the most recently seen first when "last seen" is ascending', () => {
    expect(pageRequest({ ...DEFAULT_QUERY, sort: 'last_seen', direction: 'asc' }).order).toBe('desc');
    expect(pageRequest({ ...DEFAULT_QUERY, sort: 'last_seen', direction: 'desc' }).order).toBe('asc');
  });

  it('tells queries that ask for other rows apart', () => {
    expect(sameQuery(DEFAULT_QUERY, { ...DEFAULT_QUERY, search: ' ' })).toBe(true);
    expect(sameQuery(DEFAULT_QUERY, { ...DEFAULT_QUERY, search: 'a' })).toBe(false);
    expect(sameQuery(DEFAULT_QUERY, { ...DEFAULT_QUERY, statuses: ['online'] })).toBe(false);
    expect(sameQuery(DEFAULT_QUERY, { ...DEFAULT_QUERY, direction: 'desc' })).toBe(false);
  });
});

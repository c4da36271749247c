import { describe, expect, it } from 'vitest';
import { NEWEST, filtersFromParams, filtersToParams, streamFor, toEventQuery } from './filters';

describe('audit filters', () => {
  it('round-trips through the URL', () => {
    const filters = {
      client: 'gpu-01',
      types: ['ModelAdded', 'ModelRemoved'],
      from: '2026-11-27T10:00:00.000Z',
      to: '',
      hideHeartbeats: true,
      includeArchived: true,
      after: 200,
      before: null
    };
    expect(filtersFromParams(filtersToParams(filters))).toEqual(filters);
    const older = { ...filters, after: null, before: 150 };
    expect(filtersToParams(older).toString()).toContain('before=150');
    expect(filtersFromParams(filtersToParams(older))).toEqual(older);
  });

  it('ignores a bad cursor', () => {
    expect(filtersFromParams(new URLSearchParams('after=-3')).after).toBeNull();
    expect(filtersFromParams(new URLSearchParams('after=abc')).after).toBeNull();
    expect(filtersFromParams(new URLSearchParams('before=0')).before).toBeNull();
    expect(filtersFromParams(new URLSearchParams('before=1.5')).before).toBeNull();
    expect(filtersFromParams(new URLSearchParams('before=1e300')).before).toBeNull();
  });

  it('keeps one cursor: before wins over after in a hand-made URL', () => {
    const filters = filtersFromParams(new URLSearchParams('after=5&before=9'));
    expect([filters.after, filters.before]).toEqual([null, 9]);
  });

  it('asks for the newest page when there is no cursor', () => {
    const query = toEventQuery(filtersFromParams(new URLSearchParams('')), 100);
    expect(query).toMatchObject({ after: null, before: NEWEST, limit: 100 });
    const older = toEventQuery(filtersFromParams(new URLSearchParams('before=42')), 100);
    expect(older).toMatchObject({ after: null, before: 42 });
  });

  it('maps a client to its stream', () => {
    expect(streamFor('gpu-01')).toBe('client-gpu-01');
    expect(streamFor('system')).toBe('system');
    expect(streamFor('')).toBeNull();
  });

  it('hides heartbeats by asking for every other type', () => {
    const query = toEventQuery(filtersFromParams(new URLSearchParams('heartbeats=hide')), 100);
    expect(query.types).not.toContain('HeartbeatReceived');
    expect(query.types).toContain('ClientTimedOut');
  });

  it('uses chosen types as they are', () => {
    const query = toEventQuery(
      filtersFromParams(new URLSearchParams('type=ModelAdded&heartbeats=hide&after=5')),
      50
    );
    expect(query).toEqual({
      stream: null,
      types: ['ModelAdded'],
      from: null,
      to: null,
      after: 5,
      before: null,
      limit: 50,
      includeArchived: false
    });
  });

  it('includes the archive only when the URL asks for it', () => {
    const filters = filtersFromParams(new URLSearchParams('archived=include&before=42'));
    expect(filters.includeArchived).toBe(true);
    expect(filtersToParams(filters).get('archived')).toBe('include');
    expect(toEventQuery(filters, 100)).toMatchObject({ includeArchived: true, before: 42 });
    const live = filtersFromParams(new URLSearchParams('archived=yes'));
    expect(live.includeArchived).toBe(false);
    expect(filtersToParams(live).has('archived')).toBe(false);
  });

  it('keeps LogCompacted when heartbeats are hidden', () => {
    const query = toEventQuery(filtersFromParams(new URLSearchParams('heartbeats=hide')), 100);
    expect(query.types).toContain('LogCompacted');
  });
});

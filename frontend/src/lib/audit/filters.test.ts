import { describe, expect, it } from 'vitest';
import { filtersFromParams, filtersToParams, streamFor, toEventQuery } from './filters';

describe('audit filters', () => {
  it('round-trips through the URL', () => {
    const filters = {
      client: 'gpu-01',
      types: ['ModelAdded', 'ModelRemoved'],
      from: '2026-11-27T10:00:00.000Z',
      to: '',
      hideHeartbeats: true,
      after: 200
    };
    expect(filtersFromParams(filtersToParams(filters))).toEqual(filters);
  });

  it('ignores a bad cursor', () => {
    expect(filtersFromParams(new URLSearchParams('after=-3')).after).toBeNull();
    expect(filtersFromParams(new URLSearchParams('after=abc')).after).toBeNull();
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
    expect(query).toEqual({ stream: null, types: ['ModelAdded'], from: null, to: null, after: 5, limit: 50 });
  });
});

import { describe, expect, it } from 'vitest';
import { modelAvailability } from '$lib/testing/fixtures';
import { applyModelUpdate, buildMatrix, majorityDigest } from './matrix';

const models = [
  modelAvailability('llama3', [
    ['a', 'sha256:111', true],
    ['b', 'sha256:111'],
    ['c', 'sha256:222']
  ]),
  modelAvailability('mistral', [['b', 'sha256:333']])
];
const all = { search: '', driftOnly: false, loadedOnly: false };

describe('model matrix', () => {
  it('lists every host that holds a model, sorted', () => {
    const matrix = buildMatrix(models, all);
    expect(matrix.hosts.map((h) => h.client_id)).toEqual(['a', 'b', 'c']);
    expect(matrix.rows.map((r) => r.model.name)).toEqual(['llama3', 'mistral']);
  });

  it('flags only hosts whose digest differs from the majority', () => {
    const row = buildMatrix(models, all).rows[0]!;
    expect(row.majorityDigest).toBe('sha256:111');
    expect(row.cells.get('a')?.drifted).toBe(false);
    expect(row.cells.get('c')?.drifted).toBe(true);
    expect(row.cells.get('a')?.host.loaded).toBe(true);
  });

  it('judges drift by the fleet-wide digest counts when the server sends them', () => {
    // On this page of hosts 222 is the majority; across the fleet 111 is.
    const paged = [{ ...models[0]!, digest_counts: { 'sha256:111': 900, 'sha256:222': 3 } }];
    paged[0]!.hosts = paged[0]!.hosts.filter((h) => h.client_id === 'c');
    const row = buildMatrix(paged, all).rows[0]!;
    expect(row.majorityDigest).toBe('sha256:111');
    expect(row.cells.get('c')?.drifted).toBe(true);
    expect(majorityDigest([], { 'sha256:b': 2, 'sha256:a': 2 })).toBe('sha256:a');
  });

  it('filters to drifting, loaded or matching models', () => {
    expect(buildMatrix(models, { ...all, driftOnly: true }).rows.map((r) => r.model.name)).toEqual([
      'llama3'
    ]);
    expect(buildMatrix(models, { ...all, loadedOnly: true }).rows.map((r) => r.model.name)).toEqual([
      'llama3'
    ]);
    expect(buildMatrix(models, { ...all, search: 'mis' }).rows.map((r) => r.model.name)).toEqual(['mistral']);
    expect(buildMatrix(models, { ...all, search: 'c.lab' }).rows.map((r) => r.model.name)).toEqual([
      'llama3'
    ]);
  });

  it('breaks digest ties deterministically', () => {
    expect(
      majorityDigest(
        modelAvailability('x', [
          ['a', 'sha256:b'],
          ['b', 'sha256:a']
        ]).hosts
      )
    ).toBe('sha256:a');
  });

  it('applies live updates and removals', () => {
    const updated = applyModelUpdate(models, modelAvailability('mistral', [['a', 'sha256:333']]));
    expect(updated.find((m) => m.name === 'mistral')?.hosts[0]?.client_id).toBe('a');
    expect(applyModelUpdate(models, { name: 'llama3', removed: true }).map((m) => m.name)).toEqual([
      'mistral'
    ]);
  });
});

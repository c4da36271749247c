// The models page's model x host matrix: which host holds which model, at which digest,
// and whether it is loaded; digests that differ from the most common one are flagged.
import type { ModelAvailability, ModelHost } from '$lib/api/schemas';

export interface MatrixHost {
  client_id: string;
  hostname: string;
}

export interface MatrixCell {
  host: ModelHost;
  /** True when this host's digest is not the model's most common digest. */
  drifted: boolean;
}

export interface MatrixRow {
  model: ModelAvailability;
  /** The digest most hosts hold (ties: the lowest digest, so it is stable). */
  majorityDigest: string | null;
  cells: Map<string, MatrixCell>;
}

export interface Matrix {
  hosts: MatrixHost[];
  rows: MatrixRow[];
}

/** The most common digest: from the server's fleet-wide `digestCounts` when given (a page of
 * hosts is not the fleet), else from the hosts at hand. */
export function majorityDigest(
  hosts: readonly ModelHost[],
  digestCounts?: Readonly<Record<string, number>>
): string | null {
  const counts = new Map<string, number>();
  if (digestCounts) for (const [digest, n] of Object.entries(digestCounts)) counts.set(digest, n);
  else for (const h of hosts) counts.set(h.digest, (counts.get(h.digest) ?? 0) + 1);
  let best: string | null = null;
  let bestCount = 0;
  for (const [digest, count] of [...counts].sort(([a], [b]) => a.localeCompare(b))) {
    if (count > bestCount) {
      best = digest;
      bestCount = count;
    }
  }
  return best;
}

export interface MatrixFilter {
  search: string;
  driftOnly: boolean;
  loadedOnly: boolean;
}

type MatrixModel = ModelAvailability & { digest_counts?: Record<string, number> };

export function buildMatrix(models: readonly MatrixModel[], filter: MatrixFilter): Matrix {
  const term = filter.search.trim().toLowerCase();
  const rows: MatrixRow[] = [];
  const hosts = new Map<string, MatrixHost>();
  for (const model of models) {
    if (filter.driftOnly && !model.drift) continue;
    if (filter.loadedOnly && model.loaded_count === 0) continue;
    const hostMatch = (h: ModelHost) => h.hostname.toLowerCase().includes(term);
    if (term && !model.name.toLowerCase().includes(term) && !model.hosts.some(hostMatch)) continue;
    const majority = majorityDigest(model.hosts, model.digest_counts);
    const cells = new Map<string, MatrixCell>();
    for (const host of model.hosts) {
      cells.set(host.client_id, { host, drifted: model.drift && host.digest !== majority });
      if (!hosts.has(host.client_id))
        hosts.set(host.client_id, { client_id: host.client_id, hostname: host.hostname });
    }
    rows.push({ model, majorityDigest: majority, cells });
  }
  rows.sort((a, b) => a.model.name.localeCompare(b.model.name));
  return {
    hosts: [...hosts.values()].sort((a, b) => a.hostname.localeCompare(b.hostname)),
    rows
  };
}

/** Replace or remove one model after a live `model` message. */
export function applyModelUpdate(
  models: readonly ModelAvailability[],
  update: ModelAvailability | { name: string; removed: true }
): ModelAvailability[] {
  const rest = models.filter((m) => m.name !== update.name);
  return 'removed' in update ? rest : [...rest, update];
}

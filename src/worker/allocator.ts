/**
 * Picks concrete resource indices (CPU ids, GPU labels) for a task on this worker. The server
 * has already checked that the amounts fit; this only chooses which indices. Whole units take
 * whole free indices in order; a fraction comes from one index that still has enough left.
 */
import type {
  ResourceDescriptor,
  ResourceDescriptorItem,
  ResourceRequestEntry,
} from '../common/resources.js';

const UNIT = 10_000;

interface IndexedPool {
  kind: 'indexed';
  labels: string[];
  /** Remaining fraction of each index, in fixed-point units (UNIT = whole index free). */
  left: number[];
}

interface SumPool {
  kind: 'sum';
  size: number;
  left: number;
}

type Pool = IndexedPool | SumPool;

export interface Allocation {
  /** Per resource: the labels given (indexed pools) and the amount taken. */
  entries: {
    name: string;
    labels: string[] | null;
    taken: { index: number; amount: number }[];
    amount: number;
  }[];
}

function labelsOf(item: ResourceDescriptorItem): string[] {
  switch (item.kind) {
    case 'list':
      return item.values;
    case 'groups':
      return item.groups.flat();
    case 'range': {
      const out: string[] = [];
      for (let i = item.start; i <= item.end; i++) {
        out.push(String(i));
      }
      return out;
    }
    case 'sum':
      return [];
  }
}

export class ResourceAllocator {
  private readonly pools = new Map<string, Pool>();

  constructor(descriptor: ResourceDescriptor) {
    for (const item of descriptor.resources) {
      if (item.kind === 'sum') {
        this.pools.set(item.name, { kind: 'sum', size: item.size, left: item.size });
      } else {
        const labels = labelsOf(item);
        this.pools.set(item.name, { kind: 'indexed', labels, left: labels.map(() => UNIT) });
      }
    }
  }

  /** Allocates every entry or nothing; null when something does not fit right now. */
  allocate(request: ResourceRequestEntry[]): Allocation | null {
    const done: Allocation = { entries: [] };
    for (const entry of request) {
      const pool = this.pools.get(entry.resource);
      if (pool === undefined) {
        this.free(done);
        return null;
      }
      const amount =
        entry.request.kind === 'all'
          ? pool.kind === 'sum'
            ? pool.size
            : pool.labels.length * UNIT
          : entry.request.amount;
      const taken = this.take(pool, amount);
      if (taken === null) {
        this.free(done);
        return null;
      }
      done.entries.push({
        name: entry.resource,
        labels: pool.kind === 'indexed' ? taken.map((t) => pool.labels[t.index]!) : null,
        taken,
        amount,
      });
    }
    return done;
  }

  private take(pool: Pool, amount: number): { index: number; amount: number }[] | null {
    if (pool.kind === 'sum') {
      if (pool.left < amount) {
        return null;
      }
      pool.left -= amount;
      return [{ index: 0, amount }];
    }
    let whole = Math.floor(amount / UNIT);
    const fraction = amount - whole * UNIT;
    const out: { index: number; amount: number }[] = [];
    for (let i = 0; i < pool.left.length && whole > 0; i++) {
      if (pool.left[i] === UNIT) {
        out.push({ index: i, amount: UNIT });
        whole--;
      }
    }
    if (whole > 0) {
      return null;
    }
    if (fraction > 0) {
      // Prefer an index already split, so whole indices stay whole for others.
      let best = -1;
      for (let i = 0; i < pool.left.length; i++) {
        const left = pool.left[i]!;
        if (left >= fraction && !out.some((t) => t.index === i)) {
          if (best === -1 || left < pool.left[best]!) {
            best = i;
          }
        }
      }
      if (best === -1) {
        return null;
      }
      out.push({ index: best, amount: fraction });
    }
    for (const t of out) {
      pool.left[t.index]! -= t.amount;
    }
    return out;
  }

  free(allocation: Allocation): void {
    for (const entry of allocation.entries) {
      const pool = this.pools.get(entry.name);
      if (pool === undefined) {
        continue;
      }
      for (const t of entry.taken) {
        if (pool.kind === 'sum') {
          pool.left += t.amount;
        } else {
          pool.left[t.index]! += t.amount;
        }
      }
    }
  }
}

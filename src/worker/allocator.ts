/**
 * Picks concrete resource indices (CPU ids, GPU labels) for a task on this worker, following
 * upstream's tako worker allocator (policies, NUMA groups, coupling). The server has already
 * planned the amounts; this chooses which indices, and may refuse (null) when the worker's
 * view differs or a strict policy cannot be met right now (the worker retries when a task ends).
 *
 * Invariants:
 * - An index is in exactly one state: wholly free (on its group's `free` stack), partially used
 *   (in its group's `fractions` map with the remaining part in [0, UNIT)), or wholly taken.
 *   So no index is ever given out beyond one unit in total.
 * - A request `n.f` takes n whole indices plus ONE index for the fraction `f`; that index is
 *   listed last. A fraction prefers the partially used index with the smallest remainder that
 *   fits (best fit) and splits a whole index only when none fits.
 * - A sum pool only counts: its running requests never exceed its size; it has no labels.
 * - `allocate` either takes every entry or changes nothing. `free` returns exactly what was
 *   taken, in reverse order, so a released stack is restored to its previous order.
 *
 * Label order follows upstream: whole indices are popped from the end of a stack, so a fresh
 * `range(0-3)` gives `3,2,1,0` for 4 units; compact and scatter on grouped pools list indices
 * sorted by (group, index); tight lists group by group; `all` lists groups in order.
 */
import {
  FRACTIONS_PER_UNIT,
  type AllocationPolicy,
  type ResourceDescriptor,
  type ResourceDescriptorItem,
  type ResourceRequestEntry,
} from '../common/resources.js';

const UNIT = FRACTIONS_PER_UNIT;
/** Cost of using one more group; coupling weights (default 256) are traded against it. */
const GROUP_COST = 1024;
/** Above this many groups the group choice is greedy (masks would not fit 32 bits anyway). */
const EXACT_MAX_GROUPS = 16;
/** Group subsets examined per request before falling back to the greedy choice. */
const EXACT_BUDGET = 4096;
/** Combinations of candidate group sets tried when coupling weights link several requests. */
const JOINT_BUDGET = 65_536;

interface Group {
  /** Wholly free indices; the next one given out is the last. */
  free: number[];
  /** Partially used indices → the part still free (0 ≤ part < UNIT). */
  fractions: Map<number, number>;
}

interface IndexedPool {
  kind: 'indexed';
  labels: string[];
  groups: Group[];
  totalUnits: number;
  /** Group sizes and zero fractions: the group solver's input for an idle worker. */
  fullUnits: number[];
  noFractions: number[];
  /** Reused group solver input for the current state (avoids per-call arrays). */
  units: number[];
  maxFraction: number[];
}

interface SumPool {
  kind: 'sum';
  size: number;
  free: number;
}

type Pool = IndexedPool | SumPool;

export interface AllocationIndex {
  /** Position in the pool's flattened label list. */
  index: number;
  group: number;
  /** UNIT for a whole index, less for a fraction. */
  amount: number;
}

export interface Allocation {
  /** Per resource: the labels given (indexed pools; null for sum pools) and the amount taken. */
  entries: {
    name: string;
    labels: string[] | null;
    taken: AllocationIndex[];
    amount: number;
  }[];
}

interface Coupling {
  resource1: string;
  group1: number;
  resource2: string;
  group2: number;
  weight: number;
}

/** A compact/tight request on a grouped pool, whose groups are chosen by the group solver. */
interface GroupedRequest {
  pool: IndexedPool;
  units: number;
  fraction: number;
  policy: AllocationPolicy;
  name: string;
  /** Solver output: chosen groups, ascending. */
  chosen: number[];
}

interface Edge {
  a: number;
  groupA: number;
  b: number;
  groupB: number;
  weight: number;
}

function groupsOf(item: ResourceDescriptorItem): string[][] {
  switch (item.kind) {
    case 'list':
      return [item.values];
    case 'groups':
      return item.groups;
    case 'range': {
      const out: string[] = [];
      for (let i = item.start; i <= item.end; i++) {
        out.push(String(i));
      }
      return [out];
    }
    case 'sum':
      return [];
  }
}

function isGroupPolicy(policy: AllocationPolicy): boolean {
  return policy !== 'scatter';
}

function isForced(policy: AllocationPolicy): boolean {
  return policy === 'compact!' || policy === 'tight!';
}

function lowestBit(mask: number): number {
  return 31 - Math.clz32(mask & -mask);
}

function popCount(mask: number): number {
  let n = 0;
  for (let m = mask; m !== 0; m &= m - 1) {
    n++;
  }
  return n;
}

/** Next larger integer with the same number of set bits (Gosper's hack). */
function nextCombination(mask: number): number {
  const low = mask & -mask;
  const ripple = mask + low;
  return (((ripple ^ mask) >>> 2) / low) | ripple;
}

function binomial(n: number, k: number): number {
  let result = 1;
  for (let i = 1; i <= k; i++) {
    result = (result * (n - k + i)) / i;
  }
  return result;
}

/**
 * Whether the groups can serve `units` whole indices plus a `fraction`: the fraction comes
 * either from a partially used index with enough left or from one more whole index.
 */
function feasible(
  units: number[],
  maxFraction: number[],
  rq: GroupedRequest,
  mask: number,
): boolean {
  let whole = 0;
  let fractionFits = false;
  for (let m = mask; m !== 0; m &= m - 1) {
    const g = lowestBit(m);
    whole += units[g]!;
    if (rq.fraction > 0 && maxFraction[g]! >= rq.fraction) {
      fractionFits = true;
    }
  }
  if (rq.fraction === 0) {
    return whole >= rq.units;
  }
  return whole >= rq.units + 1 || (whole >= rq.units && fractionFits);
}

/**
 * Upstream's tie-breaker between group sets of the same size: whole requests prefer groups with
 * fewer free indices (best fit, keeping big groups for big tasks); fractional requests prefer
 * groups with a large free fraction (filling partially used indices before splitting new ones).
 */
function tieBreak(
  units: number[],
  maxFraction: number[],
  rq: GroupedRequest,
  mask: number,
): number {
  let score = 0;
  for (let m = mask; m !== 0; m &= m - 1) {
    const g = lowestBit(m);
    if (rq.fraction === 0) {
      score -= units[g]! / 32;
    } else if (maxFraction[g]! >= rq.fraction) {
      score += (maxFraction[g]! * 16) / UNIT;
    }
  }
  return score;
}

function maskToGroups(mask: number): number[] {
  const out: number[] = [];
  for (let m = mask; m !== 0; m &= m - 1) {
    out.push(lowestBit(m));
  }
  return out;
}

/** Smallest-remainder partially used index that still fits the fraction (first wins ties). */
function bestFraction(group: Group, fraction: number): number {
  let best = -1;
  let bestLeft = UNIT;
  for (const [index, left] of group.fractions) {
    if (left >= fraction && (best === -1 || left < bestLeft)) {
      best = index;
      bestLeft = left;
    }
  }
  return best;
}

function groupMaxFraction(group: Group): number {
  let max = 0;
  for (const left of group.fractions.values()) {
    if (left > max) {
      max = left;
    }
  }
  return max;
}

export class ResourceAllocator {
  private readonly pools = new Map<string, Pool>();
  private readonly couplings: Coupling[] = [];
  /** Best solver score on an idle worker, per request with a strict policy (computed once). */
  private readonly optimalScores = new WeakMap<ResourceRequestEntry[], number>();

  /**
   * `usableCpus`: the CPU labels this process may run on. A worker can declare CPUs the machine
   * does not have (`--cpus 4` on a 2-CPU node); those are then handed out last, so that a task
   * that pins itself to its `HQ_CPUS` gets CPUs that exist whenever there are enough. Where every
   * declared CPU exists the order is exactly upstream's.
   */
  constructor(descriptor: ResourceDescriptor, options: { usableCpus?: ReadonlySet<string> } = {}) {
    for (const item of descriptor.resources) {
      if (item.kind === 'sum') {
        this.pools.set(item.name, { kind: 'sum', size: item.size, free: item.size });
        continue;
      }
      const labels: string[] = [];
      const groups: Group[] = [];
      const usable = item.name === 'cpus' ? options.usableCpus : undefined;
      for (const groupLabels of groupsOf(item)) {
        let free: number[] = [];
        for (const label of groupLabels) {
          free.push(labels.length);
          labels.push(label);
        }
        if (usable !== undefined) {
          // Stacks pop from the end: usable CPUs go last so that they are taken first.
          const missing = free.filter((i) => !usable.has(labels[i]!));
          free = [...missing, ...free.filter((i) => usable.has(labels[i]!))];
        }
        groups.push({ free, fractions: new Map() });
      }
      const fullUnits = groups.map((g) => g.free.length);
      this.pools.set(item.name, {
        kind: 'indexed',
        labels,
        groups,
        totalUnits: labels.length,
        fullUnits,
        noFractions: groups.map(() => 0),
        units: fullUnits.slice(),
        maxFraction: groups.map(() => 0),
      });
    }
    for (const w of descriptor.coupling.weights) {
      const r1 = descriptor.resources[w.resource1Idx];
      const r2 = descriptor.resources[w.resource2Idx];
      if (r1 !== undefined && r2 !== undefined) {
        this.couplings.push({
          resource1: r1.name,
          group1: w.group1Idx,
          resource2: r2.name,
          group2: w.group2Idx,
          weight: w.weight,
        });
      }
    }
  }

  /** Allocates every entry or nothing; null when something does not fit right now. */
  allocate(request: ResourceRequestEntry[]): Allocation | null {
    let grouped: GroupedRequest[] | null = null;
    let forced = false;
    for (let i = 0; i < request.length; i++) {
      const entry = request[i]!;
      const pool = this.pools.get(entry.resource);
      if (pool === undefined || !this.fits(pool, entry)) {
        return null;
      }
      // Checks are done before anything is taken, so a repeated name could overdraw the pool.
      for (let j = 0; j < i; j++) {
        if (request[j]!.resource === entry.resource) {
          return null;
        }
      }
      const rq = entry.request;
      if (
        pool.kind === 'indexed' &&
        pool.groups.length > 1 &&
        rq.kind === 'amount' &&
        isGroupPolicy(rq.policy)
      ) {
        grouped ??= [];
        grouped.push({
          pool,
          units: Math.floor(rq.amount / UNIT),
          fraction: rq.amount % UNIT,
          policy: rq.policy,
          name: entry.resource,
          chosen: [],
        });
        forced ||= isForced(rq.policy);
      }
    }
    if (grouped !== null) {
      const score = this.solve(grouped, false);
      if (score === null) {
        return null;
      }
      if (forced && score < this.optimalScore(request, grouped)) {
        return null;
      }
    }

    const done: Allocation = { entries: [] };
    for (const entry of request) {
      const pool = this.pools.get(entry.resource)!;
      const rq = grouped?.find((g) => g.name === entry.resource);
      if (pool.kind === 'sum') {
        const amount = entry.request.kind === 'all' ? pool.size : entry.request.amount;
        pool.free -= amount;
        done.entries.push({ name: entry.resource, labels: null, taken: [], amount });
        continue;
      }
      let amount: number;
      let taken: AllocationIndex[];
      if (entry.request.kind === 'all') {
        amount = pool.totalUnits * UNIT;
        taken = takeAll(pool);
      } else {
        amount = entry.request.amount;
        if (pool.groups.length === 1) {
          taken = takeFromSingleGroup(pool, amount);
        } else if (rq === undefined) {
          taken = takeScatter(pool, amount, null);
        } else if (rq.policy === 'tight' || rq.policy === 'tight!') {
          taken = takeTight(pool, amount, rq.chosen);
        } else {
          taken = takeScatter(pool, amount, rq.chosen);
        }
      }
      done.entries.push({
        name: entry.resource,
        labels: taken.length === 0 ? null : taken.map((t) => pool.labels[t.index]!),
        taken,
        amount,
      });
    }
    return done;
  }

  free(allocation: Allocation): void {
    for (const entry of allocation.entries) {
      const pool = this.pools.get(entry.name);
      if (pool === undefined) {
        continue;
      }
      if (pool.kind === 'sum') {
        pool.free += entry.amount;
        continue;
      }
      // In reverse, so that the stacks get back their previous order.
      for (let i = entry.taken.length - 1; i >= 0; i--) {
        const t = entry.taken[i]!;
        const group = pool.groups[t.group]!;
        if (t.amount === UNIT) {
          group.free.push(t.index);
          continue;
        }
        const left = (group.fractions.get(t.index) ?? 0) + t.amount;
        if (left >= UNIT) {
          group.fractions.delete(t.index);
          group.free.push(t.index);
        } else {
          group.fractions.set(t.index, left);
        }
      }
    }
  }

  /**
   * Whether the pool can serve the entry at all right now. For an indexed pool the bound is
   * the free whole indices plus the largest free fraction, which is exact: the fraction must
   * come from one index.
   */
  private fits(pool: Pool, entry: ResourceRequestEntry): boolean {
    if (pool.kind === 'sum') {
      return entry.request.kind === 'all'
        ? pool.free === pool.size
        : entry.request.amount <= pool.free;
    }
    let units = 0;
    let maxFraction = 0;
    for (const group of pool.groups) {
      units += group.free.length;
      const f = groupMaxFraction(group);
      if (f > maxFraction) {
        maxFraction = f;
      }
    }
    if (entry.request.kind === 'all') {
      return units === pool.totalUnits;
    }
    return entry.request.amount <= units * UNIT + maxFraction;
  }

  /**
   * The score of the best achievable choice on an idle worker; a strict request starts only when
   * it can match it (the fewest groups and the best coupling it could ever get).
   */
  private optimalScore(request: ResourceRequestEntry[], grouped: GroupedRequest[]): number {
    let score = this.optimalScores.get(request);
    if (score === undefined) {
      const saved = grouped.map((g) => g.chosen);
      score = this.solve(grouped, true) ?? Number.NEGATIVE_INFINITY;
      grouped.forEach((g, i) => (g.chosen = saved[i]!));
      this.optimalScores.set(request, score);
    }
    return score;
  }

  /**
   * Chooses the groups for each grouped request (upstream solves this as a small ILP): maximise
   * `coupling weights of chosen group pairs − GROUP_COST × groups used`, ties broken by
   * {@link tieBreak}. Fills `chosen`; returns the score, or null when nothing fits.
   */
  private solve(grouped: GroupedRequest[], idle: boolean): number | null {
    if (!idle) {
      for (const rq of grouped) {
        rq.pool.groups.forEach((group, g) => {
          rq.pool.units[g] = group.free.length;
          rq.pool.maxFraction[g] = groupMaxFraction(group);
        });
      }
    }
    const units = (rq: GroupedRequest): number[] => (idle ? rq.pool.fullUnits : rq.pool.units);
    const fractions = (rq: GroupedRequest): number[] =>
      idle ? rq.pool.noFractions : rq.pool.maxFraction;

    const edges = this.couplings.length === 0 ? [] : this.edgesAmong(grouped);
    const exact = grouped.every((rq) => rq.pool.groups.length <= EXACT_MAX_GROUPS);
    if (edges.length > 0 && exact) {
      const score = solveJoint(grouped, edges, units, fractions);
      if (score !== null) {
        return score;
      }
    }
    // Each request on its own: without coupling between them the score is separable.
    for (const rq of grouped) {
      const chosen = exact
        ? bestGroupsExact(rq, units(rq), fractions(rq))
        : bestGroupsGreedy(rq, units(rq), fractions(rq));
      if (chosen === null) {
        return null;
      }
      rq.chosen = chosen;
    }
    let score = 0;
    for (const rq of grouped) {
      score -= GROUP_COST * rq.chosen.length;
    }
    for (const e of edges) {
      if (grouped[e.a]!.chosen.includes(e.groupA) && grouped[e.b]!.chosen.includes(e.groupB)) {
        score += e.weight;
      }
    }
    return score;
  }

  private edgesAmong(grouped: GroupedRequest[]): Edge[] {
    const edges: Edge[] = [];
    for (const c of this.couplings) {
      const a = grouped.findIndex((rq) => rq.name === c.resource1);
      const b = grouped.findIndex((rq) => rq.name === c.resource2);
      if (a >= 0 && b >= 0) {
        edges.push({ a, groupA: c.group1, b, groupB: c.group2, weight: c.weight });
      }
    }
    return edges;
  }
}

/**
 * The fewest groups that can serve the request, best {@link tieBreak} among those (the lowest
 * groups on ties). Falls back to the greedy choice when there are too many subsets to try.
 */
function bestGroupsExact(
  rq: GroupedRequest,
  units: number[],
  maxFraction: number[],
): number[] | null {
  const n = units.length;
  let budget = EXACT_BUDGET;
  for (let k = 1; k <= n; k++) {
    budget -= binomial(n, k);
    if (budget < 0) {
      return bestGroupsGreedy(rq, units, maxFraction);
    }
    let best = -1;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let mask = (1 << k) - 1; mask < 1 << n; mask = nextCombination(mask)) {
      if (feasible(units, maxFraction, rq, mask)) {
        const score = tieBreak(units, maxFraction, rq, mask);
        if (score > bestScore) {
          best = mask;
          bestScore = score;
        }
      }
    }
    if (best !== -1) {
      return maskToGroups(best);
    }
  }
  return null;
}

/** Largest groups first until the request fits. */
function bestGroupsGreedy(
  rq: GroupedRequest,
  units: number[],
  maxFraction: number[],
): number[] | null {
  const capacity = (g: number): number =>
    units[g]! + (rq.fraction > 0 && maxFraction[g]! >= rq.fraction ? 1 : 0);
  const order = units.map((_, g) => g);
  order.sort((x, y) => capacity(y) - capacity(x) || units[y]! - units[x]! || x - y);
  let whole = 0;
  let fractionFits = false;
  const chosen: number[] = [];
  for (const g of order) {
    chosen.push(g);
    whole += units[g]!;
    fractionFits ||= rq.fraction > 0 && maxFraction[g]! >= rq.fraction;
    const done =
      rq.fraction === 0
        ? whole >= rq.units
        : whole >= rq.units + 1 || (whole >= rq.units && fractionFits);
    if (done) {
      return chosen.sort((x, y) => x - y);
    }
  }
  return null;
}

/**
 * Exhaustive search over combinations of candidate group sets when coupling links requests.
 * A request uses more than its minimal number of groups only if the coupling weights it could
 * gain pay for the extra groups, which bounds the candidates. Null when over budget.
 */
function solveJoint(
  grouped: GroupedRequest[],
  edges: Edge[],
  units: (rq: GroupedRequest) => number[],
  fractions: (rq: GroupedRequest) => number[],
): number | null {
  const candidates = (extraAllowed: boolean): { masks: number[]; ties: number[] }[] | null => {
    const out: { masks: number[]; ties: number[] }[] = [];
    for (let i = 0; i < grouped.length; i++) {
      const rq = grouped[i]!;
      const u = units(rq);
      const f = fractions(rq);
      const n = u.length;
      let weights = 0;
      for (const e of edges) {
        if (e.a === i || e.b === i) {
          weights += e.weight;
        }
      }
      const masks: number[] = [];
      const ties: number[] = [];
      let kMax = n;
      let examined = 0;
      for (let k = 1; k <= Math.min(n, kMax); k++) {
        for (let mask = (1 << k) - 1; mask < 1 << n; mask = nextCombination(mask)) {
          if (++examined > JOINT_BUDGET) {
            return null;
          }
          if (feasible(u, f, rq, mask)) {
            if (masks.length === 0) {
              kMax = extraAllowed ? k + Math.floor(weights / GROUP_COST) : k;
            }
            masks.push(mask);
            ties.push(tieBreak(u, f, rq, mask));
          }
        }
      }
      if (masks.length === 0) {
        return null;
      }
      out.push({ masks, ties });
    }
    return out;
  };
  const combinations = (c: { masks: number[] }[]): number =>
    c.reduce((total, x) => total * x.masks.length, 1);

  let lists = candidates(true);
  if (lists === null || combinations(lists) > JOINT_BUDGET) {
    lists = candidates(false);
  }
  if (lists === null || combinations(lists) > JOINT_BUDGET) {
    return null;
  }
  const cands = lists;

  const current = grouped.map(() => 0);
  const best = grouped.map(() => 0);
  let bestScore = Number.NEGATIVE_INFINITY;
  let bestTie = Number.NEGATIVE_INFINITY;
  const visit = (i: number, groupCost: number, tie: number): void => {
    if (i === grouped.length) {
      let score = groupCost;
      for (const e of edges) {
        if ((current[e.a]! >>> e.groupA) & 1 && (current[e.b]! >>> e.groupB) & 1) {
          score += e.weight;
        }
      }
      if (score > bestScore || (score === bestScore && tie > bestTie)) {
        bestScore = score;
        bestTie = tie;
        best.splice(0, best.length, ...current);
      }
      return;
    }
    const { masks, ties } = cands[i]!;
    for (let j = 0; j < masks.length; j++) {
      const mask = masks[j]!;
      current[i] = mask;
      visit(i + 1, groupCost - GROUP_COST * popCount(mask), tie + ties[j]!);
    }
  };
  visit(0, 0, 0);
  grouped.forEach((rq, i) => (rq.chosen = maskToGroups(best[i]!)));
  return bestScore;
}

function takeWhole(group: Group, g: number, count: number, out: AllocationIndex[]): void {
  for (let i = 0; i < count; i++) {
    out.push({ index: group.free.pop()!, group: g, amount: UNIT });
  }
}

/** A partially used index that fits, else a whole one split; false when the group has neither. */
function takeFraction(group: Group, g: number, fraction: number, out: AllocationIndex[]): boolean {
  const index = bestFraction(group, fraction);
  if (index !== -1) {
    group.fractions.set(index, group.fractions.get(index)! - fraction);
    out.push({ index, group: g, amount: fraction });
    return true;
  }
  const whole = group.free.pop();
  if (whole === undefined) {
    return false;
  }
  group.fractions.set(whole, UNIT - fraction);
  out.push({ index: whole, group: g, amount: fraction });
  return true;
}

function takeFromSingleGroup(pool: IndexedPool, amount: number): AllocationIndex[] {
  const out: AllocationIndex[] = [];
  const group = pool.groups[0]!;
  takeWhole(group, 0, Math.floor(amount / UNIT), out);
  const fraction = amount % UNIT;
  if (fraction > 0) {
    takeFraction(group, 0, fraction, out);
  }
  return out;
}

function takeAll(pool: IndexedPool): AllocationIndex[] {
  const out: AllocationIndex[] = [];
  if (pool.groups.length === 1) {
    takeWhole(pool.groups[0]!, 0, pool.totalUnits, out);
    return out;
  }
  pool.groups.forEach((group, g) => {
    for (const index of group.free) {
      out.push({ index, group: g, amount: UNIT });
    }
    group.free.length = 0;
  });
  return out;
}

/**
 * Round robin over the groups (all of them for scatter, the chosen ones for compact), one whole
 * index per visit, then the fraction from the next group that can give it.
 */
function takeScatter(
  pool: IndexedPool,
  amount: number,
  chosen: number[] | null,
): AllocationIndex[] {
  const out: AllocationIndex[] = [];
  const n = chosen === null ? pool.groups.length : chosen.length;
  let units = Math.floor(amount / UNIT);
  let fraction = amount % UNIT;
  let idle = 0;
  for (let i = 0; units > 0 || fraction > 0; i = (i + 1) % n) {
    const g = chosen === null ? i : chosen[i]!;
    const group = pool.groups[g]!;
    let progressed = false;
    if (units > 0) {
      const index = group.free.pop();
      if (index !== undefined) {
        out.push({ index, group: g, amount: UNIT });
        units--;
        progressed = true;
      }
    } else if (takeFraction(group, g, fraction, out)) {
      fraction = 0;
      progressed = true;
    }
    idle = progressed ? 0 : idle + 1;
    if (idle > n) {
      throw new Error('resource allocator: chosen groups cannot serve the request');
    }
  }
  out.sort(
    (x, y) =>
      (x.amount === UNIT ? 0 : x.amount) - (y.amount === UNIT ? 0 : y.amount) ||
      x.group - y.group ||
      x.index - y.index,
  );
  return out;
}

/**
 * Fills as few groups as possible: the smallest chosen group that can hold the rest, otherwise
 * all of the largest one (the last of equals, as upstream) and repeat. The fraction is listed last.
 */
function takeTight(pool: IndexedPool, amount: number, chosen: number[]): AllocationIndex[] {
  const out: AllocationIndex[] = [];
  const left = chosen.map((g) => {
    const group = pool.groups[g]!;
    return group.free.length * UNIT + groupMaxFraction(group);
  });
  let remaining = amount;
  let fractionAt = -1;
  for (let round = 0; round <= chosen.length; round++) {
    let fit = -1;
    for (let i = 0; i < chosen.length; i++) {
      if (left[i]! >= remaining && (fit === -1 || left[i]! < left[fit]!)) {
        fit = i;
      }
    }
    if (fit !== -1) {
      const g = chosen[fit]!;
      const group = pool.groups[g]!;
      takeWhole(group, g, Math.floor(remaining / UNIT), out);
      if (remaining % UNIT > 0) {
        takeFraction(group, g, remaining % UNIT, out);
      }
      if (fractionAt !== -1) {
        const last = out.length - 1;
        [out[fractionAt], out[last]] = [out[last]!, out[fractionAt]!];
      }
      return out;
    }
    let largest = -1;
    for (let i = 0; i < chosen.length; i++) {
      if (largest === -1 || left[i]! >= left[largest]!) {
        largest = i;
      }
    }
    const g = chosen[largest]!;
    const group = pool.groups[g]!;
    left[largest] = 0;
    let units = Math.floor(remaining / UNIT);
    let fraction = remaining % UNIT;
    units -= group.free.length;
    takeWhole(group, g, group.free.length, out);
    if (fraction > 0 && bestFraction(group, fraction) !== -1) {
      takeFraction(group, g, fraction, out);
      fractionAt = out.length - 1;
      fraction = 0;
    }
    remaining = units * UNIT + fraction;
  }
  throw new Error('resource allocator: chosen groups cannot serve the request');
}

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  buildDescriptor,
  parseResourceDefinition,
  parseResourceRequest,
  type ResourceDescriptor,
  type ResourceRequestEntry,
} from '../../src/common/resources.js';
import { ResourceAllocator, type Allocation } from '../../src/worker/allocator.js';

const UNIT = 10_000;

/** `descriptor('cpus=3x4', 'foo=sum(10)')`, optionally with `--coupling` text. */
function descriptor(definitions: string[], coupling?: string): ResourceDescriptor {
  const items = definitions.map((d) => parseResourceDefinition(d));
  return buildDescriptor(items, coupling === undefined ? {} : { coupling });
}

function allocator(definitions: string[], coupling?: string): ResourceAllocator {
  return new ResourceAllocator(descriptor(definitions, coupling));
}

/** `request('cpus=6 tight', 'gpus=1')`. */
function request(...entries: string[]): ResourceRequestEntry[] {
  return entries.map((e) => parseResourceRequest(e));
}

function take(a: ResourceAllocator, ...entries: string[]): Allocation {
  const allocation = a.allocate(request(...entries));
  assert.ok(allocation !== null, `expected ${entries.join(' + ')} to fit`);
  return allocation;
}

function refused(a: ResourceAllocator, ...entries: string[]): void {
  assert.equal(a.allocate(request(...entries)), null, `expected ${entries.join(' + ')} to wait`);
}

function entryOf(allocation: Allocation, name: string): Allocation['entries'][number] {
  const entry = allocation.entries.find((e) => e.name === name);
  assert.ok(entry !== undefined, `no entry for ${name}`);
  return entry;
}

function labels(allocation: Allocation, name = 'cpus'): string[] | null {
  return entryOf(allocation, name).labels;
}

/** How many labels of the allocation fall in each group (label → group by `groupOf`). */
function perGroup(
  allocation: Allocation,
  name: string,
  groupOf: (label: string) => number,
): number[] {
  const counts = new Map<number, number>();
  for (const label of labels(allocation, name) ?? []) {
    const g = groupOf(label);
    counts.set(g, (counts.get(g) ?? 0) + 1);
  }
  return [...counts.values()].sort((x, y) => x - y);
}

function groupsUsed(allocation: Allocation, name = 'cpus'): number[] {
  return [...new Set(entryOf(allocation, name).taken.map((t) => t.group))].sort((x, y) => x - y);
}

/** 3 groups × 4 numbered 0..11: group = label div 4. */
const by4 = (label: string): number => Math.floor(Number(label) / 4);
const by10 = (label: string): number => Math.floor(Number(label) / 10);

void describe('ResourceAllocator: plain indexed pools', () => {
  void it('hands out whole indices from the top of the free stack, as upstream', () => {
    const a = allocator(['cpus=range(0-3)']);
    const four = take(a, 'cpus=4');
    assert.deepEqual(labels(four), ['3', '2', '1', '0']);
    assert.equal(entryOf(four, 'cpus').amount, 4 * UNIT);
    refused(a, 'cpus=1');
    a.free(four);
    assert.deepEqual(labels(take(a, 'cpus=1')), ['3']);
    assert.deepEqual(labels(take(a, 'cpus=2')), ['2', '1']);
  });

  void it('restores the stack order on free, so the same labels come back', () => {
    const a = allocator(['gpus=[a,b,c]']);
    const first = take(a, 'gpus=2');
    assert.deepEqual(labels(first, 'gpus'), ['c', 'b']);
    a.free(first);
    assert.deepEqual(labels(take(a, 'gpus=2'), 'gpus'), ['c', 'b']);
    assert.deepEqual(labels(take(a, 'gpus=1'), 'gpus'), ['a']);
    refused(a, 'gpus=1');
  });

  void it('reuses freed indices in any order without handing one out twice', () => {
    const a = allocator(['cpus=range(0-3)']);
    const ones = [0, 1, 2, 3].map(() => take(a, 'cpus=1'));
    refused(a, 'cpus=1');
    a.free(ones[1]!);
    a.free(ones[3]!);
    const two = take(a, 'cpus=2');
    refused(a, 'cpus=1');
    const all = [ones[0]!, ones[2]!, two].flatMap((x) => labels(x) ?? []);
    assert.deepEqual(all.sort(), ['0', '1', '2', '3']);
  });

  void it('ignores the policy on a pool with a single group', () => {
    for (const policy of ['compact', 'compact!', 'tight', 'tight!', 'scatter']) {
      const a = allocator(['cpus=range(0-3)']);
      assert.deepEqual(labels(take(a, `cpus=3 ${policy}`)), ['3', '2', '1']);
    }
  });

  void it('refuses unknown resources and amounts larger than the pool', () => {
    const a = allocator(['cpus=range(0-1)']);
    refused(a, 'gpus=1');
    refused(a, 'cpus=3');
    refused(a, 'cpus=2.0001');
    assert.deepEqual(a.allocate([]), { entries: [] });
  });
});

void describe('ResourceAllocator: fractions', () => {
  void it('takes whole indices plus one partial index, listed last', () => {
    const a = allocator(['cpus=range(0-3)']);
    const x = take(a, 'cpus=2.5');
    assert.deepEqual(labels(x), ['3', '2', '1']);
    assert.deepEqual(
      entryOf(x, 'cpus').taken.map((t) => t.amount),
      [UNIT, UNIT, 5000],
    );
    assert.equal(entryOf(x, 'cpus').amount, 25_000);
  });

  void it('puts two halves on one index and refuses a third', () => {
    const a = allocator(['cpus=[7]']);
    const h1 = take(a, 'cpus=0.5');
    const h2 = take(a, 'cpus=0.5');
    assert.deepEqual(labels(h1), ['7']);
    assert.deepEqual(labels(h2), ['7']);
    refused(a, 'cpus=0.5');
    refused(a, 'cpus=0.0001');
    a.free(h1);
    assert.deepEqual(labels(take(a, 'cpus=0.3')), ['7']);
    a.free(h2);
    refused(a, 'cpus=1');
    assert.deepEqual(labels(take(a, 'cpus=0.7')), ['7']);
    refused(a, 'cpus=0.0001');
  });

  void it('fills a partially used index before splitting a whole one', () => {
    const a = allocator(['cpus=range(0-3)']);
    const first = take(a, 'cpus=2.5');
    const second = take(a, 'cpus=0.5');
    assert.deepEqual(labels(second), [labels(first)![2]]);
    const third = take(a, 'cpus=0.5');
    assert.notEqual(labels(third)![0], labels(first)![2]);
  });

  void it('picks the partial index with the smallest remainder that fits (best fit)', () => {
    const a = allocator(['cpus=[a,b,c]']);
    take(a, 'cpus=0.3'); // c: 0.7 left
    take(a, 'cpus=0.8'); // c cannot hold it: b is split, 0.2 left
    assert.deepEqual(labels(take(a, 'cpus=0.15')), ['b']); // b: 0.05 left
    assert.deepEqual(labels(take(a, 'cpus=0.1')), ['c']); // c: 0.6 left
    assert.deepEqual(labels(take(a, 'cpus=0.05')), ['b']);
    assert.deepEqual(labels(take(a, 'cpus=1')), ['a']);
    assert.deepEqual(labels(take(a, 'cpus=0.6')), ['c']);
    refused(a, 'cpus=0.0001');
  });

  void it('does not combine two partial indices into a bigger amount', () => {
    const a = allocator(['cpus=range(0-1)']);
    const big1 = take(a, 'cpus=0.75');
    const big2 = take(a, 'cpus=0.75');
    const small1 = take(a, 'cpus=0.25');
    const small2 = take(a, 'cpus=0.25');
    refused(a, 'cpus=0.0001');
    a.free(big1);
    a.free(big2);
    // 0.75 + 0.75 is free, but on two indices.
    refused(a, 'cpus=1');
    refused(a, 'cpus=1.5');
    assert.ok(a.allocate(request('cpus=0.75')) !== null);
    a.free(small1);
    a.free(small2);
    refused(a, 'cpus=2');
  });

  void it('refuses a fraction when no single index has enough left', () => {
    const a = allocator(['cpus=range(0-1)']);
    take(a, 'cpus=0.6');
    take(a, 'cpus=0.6');
    refused(a, 'cpus=0.5');
    assert.ok(a.allocate(request('cpus=0.4')) !== null);
  });

  void it('counts whole indices exactly when a fraction is asked for too', () => {
    const a = allocator(['cpus=range(0-2)']);
    take(a, 'cpus=0.4'); // index 2 has 0.6 left, 0 and 1 whole
    refused(a, 'cpus=2.7');
    const ok = take(a, 'cpus=2.6');
    assert.deepEqual(labels(ok), ['1', '0', '2']);
    refused(a, 'cpus=0.0001');
  });

  void it('releases a split index as whole once every part is back', () => {
    const a = allocator(['cpus=range(0-1)']);
    const parts = [take(a, 'cpus=0.2'), take(a, 'cpus=0.3'), take(a, 'cpus=0.5')];
    assert.ok(parts.every((p) => labels(p)![0] === '1'));
    for (const p of parts) {
      a.free(p);
    }
    assert.deepEqual(labels(take(a, 'cpus=all')), ['1', '0']);
  });
});

void describe('ResourceAllocator: policies on grouped pools', () => {
  void it('6 compact over 3×4 takes 3+3 from two groups, sorted by group and index', () => {
    const a = allocator(['cpus=3x4']);
    const x = take(a, 'cpus=6 compact');
    assert.deepEqual(perGroup(x, 'cpus', by4), [3, 3]);
    assert.deepEqual(labels(x), ['1', '2', '3', '5', '6', '7']);
  });

  void it('6 tight over 3×4 fills one group, then 2 from another, group by group', () => {
    const a = allocator(['cpus=3x4']);
    const x = take(a, 'cpus=6 tight');
    assert.deepEqual(perGroup(x, 'cpus', by4), [2, 4]);
    const groups = (labels(x) ?? []).map(by4);
    assert.equal(new Set(groups.slice(0, 4)).size, 1);
    assert.equal(new Set(groups.slice(4)).size, 1);
    assert.notEqual(groups[0], groups[4]);
  });

  void it('6 scatter over 3×4 takes 2 from each group', () => {
    const a = allocator(['cpus=3x4']);
    const x = take(a, 'cpus=6 scatter');
    assert.deepEqual(perGroup(x, 'cpus', by4), [2, 2, 2]);
    assert.deepEqual(labels(x), ['2', '3', '6', '7', '10', '11']);
  });

  void it('forced policies give the same shapes on an idle worker', () => {
    assert.deepEqual(
      perGroup(take(allocator(['cpus=3x4']), 'cpus=6 compact!'), 'cpus', by4),
      [3, 3],
    );
    assert.deepEqual(perGroup(take(allocator(['cpus=3x4']), 'cpus=6 tight!'), 'cpus', by4), [2, 4]);
  });

  void it('scatter spreads small requests and skips exhausted groups', () => {
    const a = allocator(['cpus=3x4']);
    assert.deepEqual(groupsUsed(take(a, 'cpus=2 scatter')), [0, 1]);
    const b = allocator(['cpus=3x4']);
    take(b, 'cpus=4 compact!');
    const x = take(b, 'cpus=5 scatter');
    assert.equal(groupsUsed(x).length, 2);
    assert.equal(labels(x)!.length, 5);
  });

  void it('compact uses as few groups as possible', () => {
    const a = allocator(['cpus=4x6']);
    const s1 = groupsUsed(take(a, 'cpus=4'));
    const s2 = groupsUsed(take(a, 'cpus=4'));
    assert.equal(s1.length, 1);
    assert.equal(s2.length, 1);
    assert.notDeepEqual(s1, s2);
    assert.equal(groupsUsed(take(a, 'cpus=6')).length, 1);
    assert.equal(groupsUsed(take(a, 'cpus=7')).length, 2);
  });

  void it('compact prefers the group with the fewest free indices that still fits (best fit)', () => {
    const a = allocator(['cpus=3x4']);
    const first = take(a, 'cpus=2');
    assert.deepEqual(groupsUsed(first), [0]);
    // Group 0 has 2 left; a 2-cpu task goes there and keeps groups 1 and 2 whole.
    assert.deepEqual(groupsUsed(take(a, 'cpus=2')), [0]);
    assert.deepEqual(groupsUsed(take(a, 'cpus=3')), [1]);
    assert.deepEqual(groupsUsed(take(a, 'cpus=1')), [1]);
  });

  void it('compact over several groups uses the two emptiest-fitting ones', () => {
    const a = allocator(['cpus=3x4']);
    take(a, 'cpus=1'); // group 0: 3 free
    const x = take(a, 'cpus=6');
    assert.equal(groupsUsed(x).length, 2);
    // 3 + 4 (groups 0 and 1) wastes less than 4 + 4.
    assert.deepEqual(groupsUsed(x), [0, 1]);
  });

  void it('`all` takes every index of every group, group by group', () => {
    const a = allocator(['cpus=3x4']);
    const all = take(a, 'cpus=all');
    assert.deepEqual(
      labels(all),
      Array.from({ length: 12 }, (_, i) => String(i)),
    );
    assert.equal(entryOf(all, 'cpus').amount, 12 * UNIT);
    refused(a, 'cpus=1');
    a.free(all);
    const one = take(a, 'cpus=1');
    refused(a, 'cpus=all');
    a.free(one);
    assert.equal(labels(take(a, 'cpus=all'))!.length, 12);
  });

  void it('`all` waits while any part of an index is in use', () => {
    const a = allocator(['cpus=2x2']);
    const f = take(a, 'cpus=0.1');
    refused(a, 'cpus=all');
    a.free(f);
    assert.ok(a.allocate(request('cpus=all')) !== null);
  });
});

void describe('ResourceAllocator: compact! and tight! wait for the minimal number of groups', () => {
  void it('compact! waits instead of spanning two groups', () => {
    const a = allocator(['cpus=2x4']);
    const t1 = take(a, 'cpus=3 compact!');
    const t2 = take(a, 'cpus=3 compact!');
    assert.equal(groupsUsed(t1).length, 1);
    assert.equal(groupsUsed(t2).length, 1);
    refused(a, 'cpus=2 compact!');
    // The non-strict policy accepts the split.
    const split = take(a, 'cpus=2 compact');
    assert.equal(groupsUsed(split).length, 2);
    a.free(split);
    a.free(t1);
    assert.equal(groupsUsed(take(a, 'cpus=2 compact!')).length, 1);
  });

  void it('compact! of more than a group waits for the fewest groups it could ever use', () => {
    const a = allocator(['cpus=3x4']);
    const blocker = take(a, 'cpus=1'); // one cpu from group 0
    const eight = take(a, 'cpus=8 compact!'); // groups 1 and 2 are still whole
    assert.deepEqual(groupsUsed(eight), [1, 2]);
    a.free(eight);
    a.free(blocker);
    take(a, 'cpus=2 scatter'); // one cpu from groups 0 and 1
    refused(a, 'cpus=8 compact!'); // would need three groups
    assert.equal(groupsUsed(take(a, 'cpus=8 compact')).length, 3);
  });

  void it('tight! waits instead of spanning more groups than needed', () => {
    const a = allocator(['cpus=3x4']);
    take(a, 'cpus=3 scatter'); // one from each group: 3 free per group
    refused(a, 'cpus=4 tight!');
    const x = take(a, 'cpus=4 tight');
    assert.deepEqual(perGroup(x, 'cpus', by4), [1, 3]);
  });

  void it('refuses 9 compact! on 2×4 at all, and gives 2 compact! four times on 2×4', () => {
    const a = allocator(['cpus=2x4']);
    refused(a, 'cpus=9 compact!');
    for (let i = 0; i < 4; i++) {
      const x = take(a, 'cpus=2 compact!');
      assert.equal(groupsUsed(x).length, 1);
    }
    refused(a, 'cpus=2 compact!');
  });

  void it('allows fractions with compact!', () => {
    const a = allocator(['cpus=[[1,2],[11,12],[21,22]]']);
    const x = take(a, 'cpus=2.5 compact!');
    assert.deepEqual(perGroup(x, 'cpus', by10), [1, 2]);
    assert.equal(entryOf(x, 'cpus').taken.at(-1)!.amount, 5000);
    // Two groups are still possible: the whole group and the half index left in another.
    const y = take(a, 'cpus=2.5 compact!');
    assert.equal(groupsUsed(y).length, 2);
    assert.equal(labels(y)!.at(-1), labels(x)!.at(-1));
    refused(a, 'cpus=1.5 compact!');
    assert.deepEqual(labels(take(a, 'cpus=1 compact!')), ['11']);
  });

  void it('many small fractions with compact! share partial indices of one group', () => {
    const a = allocator(['cpus=[[1,2],[11,12],[21,22]]']);
    const parts: Allocation[] = [];
    for (let i = 0; i < 10; i++) {
      parts.push(take(a, 'cpus=0.3 compact!'));
    }
    const used = new Set(parts.flatMap((p) => labels(p) ?? []));
    // 3 per index (0.9 of each); 10 parts need 4 indices.
    assert.equal(used.size, 4);
  });
});

void describe('ResourceAllocator: fractions on grouped pools', () => {
  void it('tight lists the partial index last', () => {
    const a = allocator(['cpus=3x2']);
    const x = take(a, 'cpus=2.5 tight');
    const taken = entryOf(x, 'cpus').taken;
    assert.deepEqual(
      taken.map((t) => t.amount),
      [UNIT, UNIT, 5000],
    );
    assert.equal(new Set(taken.map((t) => t.index)).size, 3);
  });

  void it('compact and scatter list the partial index last', () => {
    for (const policy of ['compact', 'scatter']) {
      const a = allocator(['cpus=3x2']);
      const x = take(a, `cpus=2.5 ${policy}`);
      assert.deepEqual(
        entryOf(x, 'cpus').taken.map((t) => t.amount),
        [UNIT, UNIT, 5000],
      );
    }
  });

  void it('3.5 scatter over uneven groups takes four distinct labels', () => {
    const a = allocator(['foo=[[a,b,c],[i,j,k],[x,y],[v,w]]']);
    const x = take(a, 'foo=3.5 scatter');
    const l = labels(x, 'foo')!;
    assert.equal(l.length, 4);
    assert.equal(new Set(l).size, 4);
  });

  void it('a compact fraction goes to the group that already has a partial index', () => {
    const a = allocator(['cpus=3x2']);
    const first = take(a, 'cpus=3.5');
    const partialGroup = entryOf(first, 'cpus').taken.at(-1)!.group;
    const second = take(a, 'cpus=0.4');
    assert.deepEqual(groupsUsed(second), [partialGroup]);
    assert.equal(labels(second)![0], labels(first)!.at(-1));
  });

  void it('refuses 6.0001 on 3×2 and gives back everything on free', () => {
    const a = allocator(['cpus=3x2']);
    refused(a, 'cpus=6.0001');
    const x = take(a, 'cpus=2.5 scatter');
    const y = take(a, 'cpus=2.5 scatter');
    // Both halves share one index.
    assert.equal(labels(x)!.at(-1), labels(y)!.at(-1));
    a.free(x);
    a.free(y);
    assert.equal(labels(take(a, 'cpus=all'))!.length, 6);
  });
});

void describe('ResourceAllocator: sum pools', () => {
  void it('counts amounts, including fractions, and gives no labels', () => {
    const a = allocator(['cpus=[0]', 'mem=sum(2)']);
    const x = take(a, 'mem=1.3');
    assert.equal(labels(x, 'mem'), null);
    assert.equal(entryOf(x, 'mem').amount, 13_000);
    refused(a, 'mem=0.7001');
    const y = take(a, 'mem=0.7');
    refused(a, 'mem=0.0001');
    a.free(x);
    refused(a, 'mem=1.3001');
    const z = take(a, 'mem=1');
    take(a, 'mem=0.2');
    a.free(z);
    a.free(y);
    refused(a, 'mem=all');
  });

  void it('`all` takes the whole sum pool only when it is untouched', () => {
    const a = allocator(['cpus=[0]', 'mem=sum(1000)']);
    const all = take(a, 'mem=all');
    assert.equal(entryOf(all, 'mem').amount, 1000 * UNIT);
    refused(a, 'mem=1');
    a.free(all);
    const one = take(a, 'mem=1');
    refused(a, 'mem=all');
    a.free(one);
    assert.ok(a.allocate(request('mem=all')) !== null);
  });

  void it('four 0.5 fit into sum(2) at once; a fifth waits', () => {
    const a = allocator(['cpus=[0]', 'foo=sum(2)']);
    for (let i = 0; i < 4; i++) {
      take(a, 'foo=0.5');
    }
    refused(a, 'foo=0.5');
  });
});

void describe('ResourceAllocator: several resources', () => {
  void it('takes all entries or none', () => {
    const a = allocator(['cpus=range(0-3)', 'gpus=[0,1]', 'mem=sum(100)']);
    take(a, 'gpus=2');
    refused(a, 'cpus=4', 'gpus=1', 'mem=10');
    // Nothing was kept from the refused request.
    const x = take(a, 'cpus=4', 'mem=100');
    assert.deepEqual(labels(x), ['3', '2', '1', '0']);
    assert.equal(labels(x, 'mem'), null);
  });

  void it('gives an entry per requested resource with its amount', () => {
    const a = allocator(['cpus=2x2', 'gpus/nvidia=[g0,g1]', 'mem=sum(64)']);
    const x = take(a, 'cpus=3', 'gpus/nvidia=1', 'mem=32');
    assert.deepEqual(
      x.entries.map((e) => [e.name, e.amount]),
      [
        ['cpus', 30_000],
        ['gpus/nvidia', 10_000],
        ['mem', 320_000],
      ],
    );
    assert.deepEqual(labels(x, 'gpus/nvidia'), ['g1']);
  });
});

void describe('ResourceAllocator: coupling', () => {
  const coupled = ['cpus=[[1,2,3],[4,5,6]]', 'foo=[[10,20,30,40],[50,60,70,80]]'];
  const couplingText = 'cpus[0]:foo[0],cpus[1]:foo[1]';

  void it('keeps coupled requests in coupled groups', () => {
    const a = allocator(coupled, couplingText);
    for (let i = 0; i < 2; i++) {
      const x = take(a, 'cpus=1', 'foo=1 compact!');
      assert.deepEqual(groupsUsed(x, 'cpus'), groupsUsed(x, 'foo'));
    }
  });

  void it('follows the free cpus to the coupled foo group', () => {
    const withCoupling = allocator(coupled, couplingText);
    take(withCoupling, 'cpus=3'); // cpus group 0 full
    const x = take(withCoupling, 'cpus=1', 'foo=1');
    assert.deepEqual(groupsUsed(x, 'cpus'), [1]);
    assert.deepEqual(groupsUsed(x, 'foo'), [1]);

    const without = allocator(coupled);
    take(without, 'cpus=3');
    const y = take(without, 'cpus=1', 'foo=1');
    assert.deepEqual(groupsUsed(y, 'foo'), [0]);
  });

  void it('combines policies of coupled resources as upstream (test_coupling_combined)', () => {
    const cases: [string, string, number[], number[]][] = [
      ['6 tight', '2 tight', [2, 4], [2]],
      ['6 scatter', '2 scatter', [2, 2, 2], [1, 1]],
      ['6 compact', '2 compact', [3, 3], [2]],
      ['6 tight', '2 compact', [2, 4], [2]],
      ['6 compact', '2 tight', [3, 3], [2]],
      ['6 scatter', '2 tight', [2, 2, 2], [2]],
      ['6 scatter', '2 compact', [2, 2, 2], [2]],
    ];
    for (const [cpus, foo, expectCpus, expectFoo] of cases) {
      const a = allocator(
        ['cpus=[[1,2,3,4],[11,12,13,14],[21,22,23,24]]', 'foo=[[1,2],[10,11],[22,21]]'],
        'cpus[0]:foo[0],cpus[1]:foo[1],cpus[2]:foo[2]',
      );
      const x = take(a, `cpus=${cpus}`, `foo=${foo}`);
      assert.deepEqual(perGroup(x, 'cpus', by10), expectCpus, `${cpus} / ${foo}`);
      assert.deepEqual(perGroup(x, 'foo', by10), expectFoo, `${cpus} / ${foo}`);
      if (!cpus.includes('scatter') && !foo.includes('scatter')) {
        // The foo group is one of the cpu groups.
        const cpuGroups = groupsUsed(x, 'cpus');
        assert.ok(groupsUsed(x, 'foo').every((g) => cpuGroups.includes(g)));
      }
    }
  });

  void it('strict coupled requests wait when the free groups are not coupled', () => {
    for (const isCoupled of [true, false]) {
      const a = allocator(
        ['cpus=3x2', 'gpus=3x2'],
        isCoupled ? 'cpus[0]:gpus[0],cpus[1]:gpus[1],cpus[2]:gpus[2]' : undefined,
      );
      assert.deepEqual(groupsUsed(take(a, 'cpus=4 compact!')), [0, 1]);
      const gpus = [0, 1, 2].map(() => take(a, 'gpus=2'));
      assert.deepEqual(
        gpus.map((g) => groupsUsed(g, 'gpus')),
        [[0], [1], [2]],
      );
      a.free(gpus[0]!);
      // Free: cpus group 2 and gpus group 0, which are not coupled.
      const strict = a.allocate(request('cpus=1 compact!', 'gpus=1 compact!'));
      assert.equal(strict === null, isCoupled, `coupled=${isCoupled}`);
      if (strict !== null) {
        a.free(strict);
      }
      const loose = take(a, 'cpus=1 compact', 'gpus=1 compact');
      assert.deepEqual(groupsUsed(loose, 'cpus'), [2]);
      assert.deepEqual(groupsUsed(loose, 'gpus'), [0]);
      a.free(loose);
      // Once the coupled gpus group is back, the strict request starts there.
      a.free(gpus[2]!);
      const again = take(a, 'cpus=1 compact!', 'gpus=1 compact!');
      assert.deepEqual(groupsUsed(again, 'gpus'), isCoupled ? [2] : [0]);
    }
  });

  void it('a strict request with several groups waits for coupled ones', () => {
    const a = allocator(
      ['cpus=4x2', 'gpus=4x2'],
      'cpus[0]:gpus[0],cpus[1]:gpus[1],cpus[2]:gpus[2],cpus[3]:gpus[3]',
    );
    take(a, 'cpus=2 compact!'); // cpus group 0
    take(a, 'cpus=2 compact!'); // cpus group 1
    take(a, 'gpus=1 compact!'); // gpus group 0
    take(a, 'gpus=1 compact!'); // gpus group 0 again (best fit)
    const x = take(a, 'cpus=3 compact!', 'gpus=3 compact!');
    assert.deepEqual(groupsUsed(x, 'cpus'), [2, 3]);
    assert.deepEqual(groupsUsed(x, 'gpus'), [2, 3]);
  });

  void it('uses the coupling weights to choose between groups', () => {
    const a = allocator(
      ['cpus=3x1', 'gpus=3x1', 'foo=3x1'],
      'cpus[2]:gpus[1]=256,cpus[0]:gpus[1]=128,gpus[1]:foo[0]=256',
    );
    const x = take(a, 'cpus=1 compact!', 'gpus=1 compact!', 'foo=1 compact!');
    assert.deepEqual(labels(x, 'cpus'), ['2']);
    assert.deepEqual(labels(x, 'gpus'), ['1']);
    assert.deepEqual(labels(x, 'foo'), ['0']);
    // The best pairing is gone: strict requests wait, the others take the next best.
    refused(a, 'cpus=1 compact!', 'gpus=1 compact!', 'foo=1 compact!');
    const y = take(a, 'cpus=1', 'gpus=1', 'foo=1');
    assert.equal(labels(y, 'cpus')!.length, 1);
  });

  void it('prefers the coupled group for fractions too', () => {
    const a = allocator(
      ['cpus=4x4', 'gpus=4x2'],
      'cpus[0]:gpus[0],cpus[1]:gpus[1],cpus[2]:gpus[2],cpus[3]:gpus[3]',
    );
    take(a, 'cpus=4'); // cpus group 0 full
    const x = take(a, 'cpus=0.1', 'gpus=0.5');
    assert.deepEqual(groupsUsed(x, 'cpus'), groupsUsed(x, 'gpus'));
    assert.notDeepEqual(groupsUsed(x, 'cpus'), [0]);
  });

  void it('spreads over coupled groups when one does not suffice', () => {
    const a = allocator(
      ['cpus=4x4', 'gpus=4x2'],
      'cpus[0]:gpus[0],cpus[1]:gpus[1],cpus[2]:gpus[2],cpus[3]:gpus[3]',
    );
    const x = take(a, 'cpus=4', 'gpus=3');
    const cpuGroups = groupsUsed(x, 'cpus');
    const gpuGroups = groupsUsed(x, 'gpus');
    assert.equal(cpuGroups.length, 1);
    assert.equal(gpuGroups.length, 2);
    assert.ok(gpuGroups.includes(cpuGroups[0]!));
  });
});

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

void describe('ResourceAllocator: random allocate/free keeps the invariants', () => {
  void it('never over-allocates an index or a sum pool, and frees everything', () => {
    const definitions = ['cpus=[[0,1,2,3],[4,5,6,7],[8,9,10]]', 'gpus=[a,b,c]', 'mem=sum(16)'];
    const policies = ['compact', 'compact!', 'tight', 'tight!', 'scatter'];
    const sizes: Record<string, number> = { cpus: 11, gpus: 3, mem: 16 };
    for (const seed of [1, 2, 3, 4, 5]) {
      const random = rng(seed);
      for (const coupling of [undefined, 'cpus[0]:gpus[0]', 'cpus[1]:gpus[0]=2000']) {
        const defs =
          coupling === undefined
            ? definitions
            : ['cpus=[[0,1,2,3],[4,5,6,7],[8,9,10]]', 'gpus=[[a],[b,c]]', 'mem=sum(16)'];
        const a = allocator(defs, coupling);
        const live: Allocation[] = [];
        for (let step = 0; step < 600; step++) {
          if (live.length > 0 && random() < 0.45) {
            const i = Math.floor(random() * live.length);
            a.free(live.splice(i, 1)[0]!);
            continue;
          }
          const entries: string[] = [];
          for (const name of ['cpus', 'gpus', 'mem']) {
            if (random() < 0.6) {
              continue;
            }
            if (random() < 0.03) {
              entries.push(`${name}=all`);
              continue;
            }
            const whole = Math.floor(random() * Math.min(4, sizes[name]!));
            const fraction = random() < 0.5 ? Math.floor(random() * 10) * 1000 : 0;
            const amount = whole * UNIT + fraction;
            if (amount === 0) {
              continue;
            }
            const text = `${whole}.${String(fraction).padStart(4, '0')}`;
            const policy = policies[Math.floor(random() * policies.length)]!;
            entries.push(`${name}=${text} ${policy}`);
          }
          if (entries.length === 0) {
            continue;
          }
          const x = a.allocate(request(...entries));
          if (x === null) {
            continue;
          }
          live.push(x);
          for (const e of x.entries) {
            const requested = request(...entries).find((r) => r.resource === e.name)!;
            if (requested.request.kind === 'amount') {
              assert.equal(e.amount, requested.request.amount);
            }
            const sumTaken = e.taken.reduce((s, t) => s + t.amount, 0);
            if (e.name !== 'mem') {
              assert.equal(sumTaken, e.amount);
              assert.ok(e.taken.filter((t) => t.amount < UNIT).length <= 1);
              const partial = e.taken.findIndex((t) => t.amount < UNIT);
              assert.ok(partial === -1 || partial === e.taken.length - 1);
              assert.equal(new Set(e.taken.map((t) => t.index)).size, e.taken.length);
            }
          }
          // No index used beyond one unit, no sum pool beyond its size.
          const used = new Map<string, number>();
          let mem = 0;
          for (const l of live) {
            for (const e of l.entries) {
              if (e.name === 'mem') {
                mem += e.amount;
                continue;
              }
              for (const t of e.taken) {
                const key = `${e.name}/${t.index}`;
                used.set(key, (used.get(key) ?? 0) + t.amount);
              }
            }
          }
          for (const [key, total] of used) {
            assert.ok(total <= UNIT, `${key} over-allocated: ${total}`);
          }
          assert.ok(mem <= 16 * UNIT);
        }
        for (const l of live) {
          a.free(l);
        }
        const all = take(a, 'cpus=all', 'gpus=all', 'mem=all');
        assert.equal(labels(all)!.length, 11);
        assert.equal(labels(all, 'gpus')!.length, 3);
      }
    }
  });
});

void describe('ResourceAllocator: speed', () => {
  void it('allocates and frees 20 000 tasks on a 4×32 worker quickly', () => {
    const a = allocator(['cpus=4x32', 'mem=sum(1000)']);
    const req = request('cpus=2', 'mem=1');
    const live: Allocation[] = [];
    const start = process.hrtime.bigint();
    for (let i = 0; i < 20_000; i++) {
      const x = a.allocate(req);
      if (x === null) {
        a.free(live.shift()!);
        continue;
      }
      live.push(x);
    }
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    assert.ok(ms < 2000, `took ${ms} ms`);
  });
});

void describe('ResourceAllocator with CPUs the machine does not have', () => {
  void it('hands out CPUs the process may run on first, in upstream order otherwise', () => {
    const usable = new ResourceAllocator(descriptor(['cpus=[0,1,2,3]']), {
      usableCpus: new Set(['0', '1']),
    });
    assert.deepEqual(labels(take(usable, 'cpus=2 compact')), ['1', '0']);
    assert.deepEqual(labels(take(usable, 'cpus=2 compact')), ['3', '2']);
    const all = new ResourceAllocator(descriptor(['cpus=[0,1,2,3]']), {
      usableCpus: new Set(['0', '1', '2', '3']),
    });
    assert.deepEqual(
      labels(take(all, 'cpus=2 compact')),
      labels(take(allocator(['cpus=[0,1,2,3]']), 'cpus=2 compact')),
    );
    assert.deepEqual(labels(take(allocator(['cpus=[0,1,2,3]']), 'cpus=2 compact')), ['3', '2']);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { formatIdSet, type IdRange } from '../../src/common/id-set.js';
import { LAZY_RANGE_MIN, newTask, TaskTable } from '../../src/server/task-table.js';

/** A small deterministic generator, so a failing case can be replayed. */
function random(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

function idsOf(range: IdRange): number[] {
  return Array.from({ length: range.count }, (_, i) => range.start + i * range.step);
}

/** What the table must behave like: every task in a Map, in the order added. */
interface Model {
  ids: number[];
  desc: Map<number, number>;
  entry: Map<number, string | null>;
}

function build(parts: ({ range: IdRange; entries: string[] | null } | { single: number })[]): {
  table: TaskTable;
  model: Model;
} {
  const table = new TaskTable();
  const model: Model = { ids: [], desc: new Map(), entry: new Map() };
  parts.forEach((part, desc) => {
    if ('single' in part) {
      table.add(newTask(part.single, desc, null));
      model.ids.push(part.single);
      model.desc.set(part.single, desc);
      model.entry.set(part.single, null);
      return;
    }
    table.addRange(part.range, desc, part.entries, 1);
    idsOf(part.range).forEach((id, i) => {
      model.ids.push(id);
      model.desc.set(id, desc);
      model.entry.set(id, part.entries === null ? null : (part.entries[i + 1] ?? null));
    });
  });
  return { table, model };
}

function entries(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `line ${i}`);
}

void describe('TaskTable', () => {
  const big = LAZY_RANGE_MIN * 3 + 7;
  const parts = [
    { range: { start: 10_000, count: big, step: 1 }, entries: null },
    { single: 5 },
    { range: { start: 1, count: 3, step: 1 }, entries: entries(4) },
    { range: { start: 10_001 + big, count: big, step: 3 }, entries: entries(big) },
    // Interleaved with the one above: the same span, other ids.
    { range: { start: 10_002 + big, count: big, step: 3 }, entries: null },
    { single: 7 },
  ];

  void it('finds every task, with the description and entry of its submit', () => {
    const { table, model } = build(parts);
    assert.equal(table.size, model.ids.length);
    assert.equal(table.maxId(), Math.max(...model.ids));
    for (const id of model.ids) {
      const task = table.get(id);
      assert.ok(task, `task ${id}`);
      assert.equal(task.id, id);
      assert.equal(task.state, 'waiting');
      assert.equal(task.instance, 0);
      assert.equal(task.desc, model.desc.get(id));
      assert.equal(task.entry, model.entry.get(id));
      assert.ok(table.has(id));
    }
    for (const id of [0, 2 ** 32 - 1, 4, 6, 9_999, 10_000 + big, 10_003 + big, 10_000 + 4 * big]) {
      if (!model.desc.has(id)) {
        assert.equal(table.get(id), undefined, `no task ${id}`);
        assert.equal(table.has(id), false);
      }
    }
  });

  void it('keeps a record once made, and iterates in the order the tasks were added', () => {
    const { table, model } = build(parts);
    const id = 10_000 + 5;
    const task = table.get(id)!;
    task.state = 'running';
    task.workerId = 3;
    assert.equal(table.get(id), task);
    // A stand-in is only valid until the next step: read each view as it comes.
    assert.deepEqual(
      Array.from(table.views(), (t) => t.id),
      model.ids,
    );
    const viewed = Array.from(table.views(), (t) => t).find((t) => t.state === 'running');
    assert.equal(viewed, task, 'a view of a task with a record is the record');
    assert.deepEqual(
      [...table.touched()].map((t) => t.id),
      model.ids.filter((i) => i === id || i < 10),
    );
    const values = [...table.values()];
    assert.deepEqual(
      values.map((t) => t.id),
      model.ids,
    );
    assert.equal(new Set(values).size, values.length, 'values gives each task its own record');
    assert.equal([...table.touched()].length, model.ids.length);
  });

  void it('writes its ids as formatIdSet does', () => {
    const cases: Parameters<typeof build>[0][] = [
      parts,
      [],
      [{ range: { start: 0, count: big, step: 1 }, entries: null }],
      [
        { range: { start: big, count: big, step: 1 }, entries: null },
        { range: { start: 0, count: big, step: 1 }, entries: null },
        { range: { start: 3 * big, count: big, step: 1 }, entries: null },
      ],
      [{ range: { start: 0, count: big, step: 2 }, entries: null }],
    ];
    for (const c of cases) {
      const { table, model } = build(c);
      assert.equal(table.formatIds(), formatIdSet([...model.ids].sort((a, b) => a - b)));
    }
  });

  void it('gives the ready tasks as runs covering exactly them, in order', () => {
    const { table, model } = build(parts);
    const notReady = [10_000 + 5, 10_000 + 1100, 3, 10_002 + big];
    for (const id of notReady) {
      table.get(id)!.state = 'finished';
    }
    table.get(10_000 + 2000)!.workerId = 1; // a record that is still ready
    const runs = table.readyRuns();
    const listed = runs.flatMap((r) => {
      assert.ok(r.count > 0);
      return idsOf(r).map((id) => {
        assert.equal(model.desc.get(id), r.desc, `task ${id} in a run of its description`);
        return id;
      });
    });
    assert.deepEqual(
      listed,
      model.ids.filter((id) => !notReady.includes(id)),
    );
    assert.ok(runs.length < 12, `few runs (${runs.length})`);
  });

  void it('finds the first id that clashes, as checking id by id does', () => {
    const next = random(7);
    for (let round = 0; round < 300; round++) {
      const table = new TaskTable();
      const existing = new Set<number>();
      const range = (): IdRange => {
        const count = next(3) === 0 ? 1 + next(20) : LAZY_RANGE_MIN + next(600);
        return { start: next(3000), count, step: 1 + next(4) };
      };
      for (let i = next(4); i > 0; i--) {
        const r = range();
        if (idsOf(r).some((id) => existing.has(id))) {
          continue;
        }
        table.addRange(r, 0, null, 0);
        idsOf(r).forEach((id) => existing.add(id));
      }
      for (let i = next(3); i > 0; i--) {
        const id = next(3000);
        if (!existing.has(id)) {
          table.add(newTask(id, 0, null));
          existing.add(id);
        }
      }
      const submit = Array.from({ length: 1 + next(4) }, range);
      const seen = new Set(existing);
      let expected: number | null = null;
      for (const id of submit.flatMap(idsOf)) {
        if (seen.has(id)) {
          expected = id;
          break;
        }
        seen.add(id);
      }
      assert.equal(table.firstClash(submit), expected, JSON.stringify({ round, submit }));
    }
  });
});

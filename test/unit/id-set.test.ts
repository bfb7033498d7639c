import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { HqError } from '../../src/common/errors.js';
import {
  expandSelector,
  formatIdRanges,
  formatIdSet,
  idRangesContain,
  idRangesCount,
  idRangesToArray,
  parseIdRanges,
  parseIdSelector,
  parseIdSet,
  selectorMatches,
  selectorRequestedIds,
  type IdRange,
  type IdSelector,
} from '../../src/common/id-set.js';

function assertRangeError(fn: () => unknown, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof HqError);
    assert.equal(error.code, 'HQ_INVALID_RANGE');
    assert.equal(error.message, message);
    return true;
  });
}

void describe('parseIdSet', () => {
  const cases: [string, number[]][] = [
    ['0', [0]],
    ['12', [12]],
    ['3-6', [3, 4, 5, 6]],
    ['8-8', [8]],
    ['2,9,4', [2, 4, 9]],
    ['10-12,1', [1, 10, 11, 12]],
    ['1-9:4', [1, 5, 9]],
    ['1-10:4', [1, 5, 9]],
    ['0-1:1', [0, 1]],
    ['2-20:6,3-21:6', [2, 3, 8, 9, 14, 15, 20, 21]],
    // Interleaved steps that never meet are not an overlap.
    ['1-50:10,5-50:15', [1, 5, 11, 20, 21, 31, 35, 41, 50]],
    ['1_0-1_2', [10, 11, 12]],
    ['5_', [5]],
    ['1__0', [10]],
    [' 4 , 7-8 ', [4, 7, 8]],
    ['\t1,\n2', [1, 2]],
    ['4294967295', [4294967295]],
    ['4294967290-4294967295:5', [4294967290, 4294967295]],
  ];
  for (const [text, expected] of cases) {
    void it(`parses ${JSON.stringify(text)}`, () => {
      assert.deepEqual(parseIdSet(text), expected);
    });
  }

  const errors: [string, string][] = [
    ['', 'the input is empty'],
    ['  ', 'expected a number at the end of the input'],
    ['x', "unexpected 'x' at position 1, expected a number"],
    ['3-', 'expected a number at the end of the input'],
    ['3-y', "unexpected 'y' at position 3, expected a number"],
    ['3,', 'expected a number at the end of the input'],
    [',3', "unexpected ',' at position 1, expected a number"],
    ['3,,4', "unexpected ',' at position 3, expected a number"],
    ['3 4', "unexpected '4' at position 3, expected ','"],
    ['3 - 4', "unexpected '-' at position 3, expected ','"],
    ['-3', "unexpected '-' at position 1, expected a number"],
    ['_3', "unexpected '_' at position 1, expected a number"],
    ['3-4:', 'expected a number at the end of the input'],
    ['3.5', "unexpected '.' at position 2, expected ','"],
    ['all', "unexpected 'a' at position 1, expected a number"],
    ['9-2', "invalid range '9-2': the end is smaller than the start"],
    ['4:2', "invalid range '4:2': a step needs a range (A-B:STEP)"],
    ['1-9:0', "invalid range '1-9:0': the step must be between 1 and 8 (end - start)"],
    ['1-9:9', "invalid range '1-9:9': the step must be between 1 and 8 (end - start)"],
    ['6-6:1', "invalid range '6-6:1': the step must be between 1 and 0 (end - start)"],
    ['4294967296', "'4294967296' cannot be parsed as 4-byte unsigned integer"],
    ['1-99_999_999_999', "'99_999_999_999' cannot be parsed as 4-byte unsigned integer"],
    ['0-4294967295', "invalid range '0-4294967295': too many ids"],
    ['1,1', 'ranges overlap (id 1 is given more than once)'],
    ['5-9,7', 'ranges overlap (id 7 is given more than once)'],
    ['0-10, 5', 'ranges overlap (id 5 is given more than once)'],
    ['20-30,1-25', 'ranges overlap (id 20 is given more than once)'],
    ['0-12:3,2-12:5', 'ranges overlap (id 12 is given more than once)'],
    ['1-100:10,6-96:15', 'ranges overlap (id 21 is given more than once)'],
  ];
  for (const [text, reason] of errors) {
    void it(`rejects ${JSON.stringify(text)}`, () => {
      assertRangeError(() => parseIdSet(text), `Invalid id range '${text}': ${reason}`);
    });
  }
});

void describe('parseIdRanges', () => {
  void it('keeps the written order and counts ids, not the span', () => {
    assert.deepEqual(parseIdRanges('7,0-10:5,2-3'), [
      { start: 7, count: 1, step: 1 },
      { start: 0, count: 3, step: 5 },
      { start: 2, count: 2, step: 1 },
    ]);
  });

  void it('does not expand a large array', () => {
    const started = performance.now();
    const ranges = parseIdRanges('1-1_000_000,2_000_000-3_000_000_000:7');
    assert.ok(performance.now() - started < 50);
    assert.equal(idRangesCount(ranges), 1_000_000 + 428_285_715);
  });

  void it('expands a million ids quickly', () => {
    const started = performance.now();
    const ids = parseIdSet('0-999_999');
    assert.ok(performance.now() - started < 1000);
    assert.equal(ids.length, 1_000_000);
    assert.equal(ids[999_999], 999_999);
  });

  void it('checks overlaps of many single ids without quadratic work', () => {
    const text = Array.from({ length: 20_000 }, (_, i) => String(i * 2)).join(',');
    const started = performance.now();
    assert.equal(parseIdRanges(text).length, 20_000);
    assert.ok(performance.now() - started < 1000);
  });
});

void describe('range helpers', () => {
  const ranges: IdRange[] = [
    { start: 10, count: 3, step: 1 },
    { start: 0, count: 3, step: 4 },
  ];

  void it('lists ids in range order', () => {
    assert.deepEqual(idRangesToArray(ranges), [10, 11, 12, 0, 4, 8]);
    assert.deepEqual(idRangesToArray([]), []);
  });

  void it('counts ids', () => {
    assert.equal(idRangesCount(ranges), 6);
    assert.equal(idRangesCount([]), 0);
  });

  const membership: [number, boolean][] = [
    [0, true],
    [4, true],
    [8, true],
    [9, false],
    [10, true],
    [12, true],
    [13, false],
    [2, false],
    [12 + 4, false],
  ];
  for (const [id, expected] of membership) {
    void it(`knows whether ${id} is inside`, () => {
      assert.equal(idRangesContain(ranges, id), expected);
    });
  }

  void it('formats ranges in input syntax', () => {
    assert.equal(formatIdRanges(parseIdRanges('3,5-9,20-30:5,40-43:3')), '3,5-9,20-30:5,40-43:3');
    // A step that overshoots the end is written with the last real id.
    assert.equal(formatIdRanges(parseIdRanges('0-10:4')), '0-8:4');
    assert.equal(formatIdRanges([]), '');
  });
});

void describe('formatIdSet', () => {
  const cases: [number[], string][] = [
    [[], ''],
    [[4], '4'],
    [[1, 2, 3], '1-3'],
    [[1, 2, 3, 5, 7, 8, 9, 10], '1-3,5,7-10'],
    [[0, 2, 4, 6], '0,2,4,6'],
    [[9, 10], '9-10'],
    [[4294967294, 4294967295], '4294967294-4294967295'],
  ];
  for (const [ids, expected] of cases) {
    void it(`formats ${JSON.stringify(ids)}`, () => {
      assert.equal(formatIdSet(ids), expected);
    });
  }

  void it('round-trips through parseIdSet', () => {
    const ids = [0, 1, 2, 7, 9, 10, 11, 500];
    assert.deepEqual(parseIdSet(formatIdSet(ids)), ids);
  });
});

void describe('parseIdSelector', () => {
  const cases: [string, { all?: boolean; last?: boolean }, IdSelector][] = [
    ['last', { last: true }, { kind: 'last' }],
    ['last', { all: true, last: true }, { kind: 'last' }],
    ['all', { all: true }, { kind: 'all' }],
    ['all', { all: true, last: true }, { kind: 'all' }],
    ['3', {}, { kind: 'ids', ids: [{ start: 3, count: 1, step: 1 }] }],
    ['1-4', { all: true, last: true }, { kind: 'ids', ids: [{ start: 1, count: 4, step: 1 }] }],
  ];
  for (const [text, allowed, expected] of cases) {
    void it(`parses ${JSON.stringify(text)} with ${JSON.stringify(allowed)}`, () => {
      assert.deepEqual(parseIdSelector(text, allowed), expected);
    });
  }

  const errors: [string, { all?: boolean; last?: boolean }, string][] = [
    ['all', { last: true }, "Invalid id range 'all': 'all' is not accepted here"],
    ['last', {}, "Invalid id range 'last': 'last' is not accepted here"],
    ['all', { all: false }, "Invalid id range 'all': 'all' is not accepted here"],
    // Keywords are exact, as upstream matches them.
    [
      'LAST',
      { last: true },
      "Invalid id range 'LAST': unexpected 'L' at position 1, expected a number",
    ],
    [
      ' last',
      { last: true },
      "Invalid id range ' last': unexpected 'l' at position 2, expected a number",
    ],
    [
      '5-1',
      { all: true },
      "Invalid id range '5-1': invalid range '5-1': the end is smaller than the start",
    ],
  ];
  for (const [text, allowed, message] of errors) {
    void it(`rejects ${JSON.stringify(text)} with ${JSON.stringify(allowed)}`, () => {
      assertRangeError(() => parseIdSelector(text, allowed), message);
    });
  }
});

void describe('selectors against existing ids', () => {
  const existing = [4, 1, 9, 2, 7];

  void it('all selects every id in ascending order', () => {
    assert.deepEqual(expandSelector({ kind: 'all' }, existing), [1, 2, 4, 7, 9]);
    assert.deepEqual(expandSelector({ kind: 'all' }, []), []);
  });

  void it('last selects the highest id', () => {
    assert.deepEqual(expandSelector({ kind: 'last' }, existing), [9]);
    assert.deepEqual(expandSelector({ kind: 'last' }, []), []);
  });

  void it('an id set selects the existing ids in the order written', () => {
    const selector = parseIdSelector('9,1-4', {});
    assert.deepEqual(expandSelector(selector, existing), [9, 1, 2, 4]);
    assert.deepEqual(selectorRequestedIds(selector), [9, 1, 2, 3, 4]);
  });

  void it('handles a huge range against few ids', () => {
    const selector = parseIdSelector('3_000_000_000-4_000_000_000:2,0-10', {});
    const ids = [3_000_000_000, 3_000_000_001, 3_999_999_998, 5, 12];
    assert.deepEqual(expandSelector(selector, ids), [3_000_000_000, 3_999_999_998, 5]);
  });

  void it('handles many existing ids against a small set', () => {
    const many = Array.from({ length: 1_000_000 }, (_, i) => i);
    assert.deepEqual(
      expandSelector(parseIdSelector('999_999,5,2_000_000', {}), many),
      [999_999, 5],
    );
  });

  void it('has no requested ids for all and last', () => {
    assert.equal(selectorRequestedIds({ kind: 'all' }), null);
    assert.equal(selectorRequestedIds({ kind: 'last' }), null);
  });

  const matches: [IdSelector, number, number | undefined, boolean][] = [
    [{ kind: 'all' }, 5, undefined, true],
    [{ kind: 'last' }, 9, 9, true],
    [{ kind: 'last' }, 7, 9, false],
    [{ kind: 'last' }, 7, undefined, false],
    [parseIdSelector('1-9:2', {}), 7, undefined, true],
    [parseIdSelector('1-9:2', {}), 8, undefined, false],
  ];
  for (const [selector, id, lastId, expected] of matches) {
    void it(`matches ${id} against ${JSON.stringify(selector)} (last ${lastId})`, () => {
      assert.equal(selectorMatches(selector, id, lastId), expected);
    });
  }
});

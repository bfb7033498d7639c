// The e2e harness reads cli tables with a small parser; these tests pin down how it splits
// tables, sections and continuation rows, so that e2e assertions mean what they say.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { horizontalTable, parseTables, verticalMap, verticalTable } from '../e2e/harness.js';

const JOB_INFO = `+---------+-------------+
| ID      | 3           |
| Command | bash        |
|         | -c          |
|         | exit 3      |
| Empty   |             |
+---------+-------------+
+---------+---------+---------------------------+
| Task ID | Worker  | Error                     |
+---------+---------+---------------------------+
| 0       | worker1 | Cannot execute "x"        |
|         |         | The program was not found |
| 1       | worker2 | Program terminated        |
+---------+---------+---------------------------+
1 tasks failed.
`;

void describe('harness table parser', () => {
  void it('finds consecutive tables and their sections', () => {
    const tables = parseTables(JOB_INFO);
    assert.equal(tables.length, 2);
    assert.equal(tables[0]!.sections.length, 1);
    assert.equal(tables[1]!.sections.length, 2);
  });

  void it('merges continuation rows of a vertical table', () => {
    assert.deepEqual(verticalTable(JOB_INFO), [
      ['ID', '3'],
      ['Command', 'bash\n-c\nexit 3'],
      ['Empty', ''],
    ]);
    assert.equal(verticalMap(JOB_INFO).get('Command'), 'bash\n-c\nexit 3');
  });

  void it('reads a horizontal table into records', () => {
    assert.deepEqual(horizontalTable(JOB_INFO, 1), [
      {
        'Task ID': '0',
        Worker: 'worker1',
        Error: 'Cannot execute "x"\nThe program was not found',
      },
      { 'Task ID': '1', Worker: 'worker2', Error: 'Program terminated' },
    ]);
  });

  void it('reads a header-only table as no rows and ignores log lines', () => {
    const text = '2024-01-01T00:00:00Z INFO  hello\n+----+------+\n| ID | Name |\n+----+------+\n';
    assert.deepEqual(horizontalTable(text), []);
    assert.throws(() => horizontalTable(text, 1), /No table #1/);
    assert.deepEqual(parseTables('no tables here\n'), []);
  });

  void it('keeps two tables apart even with the same widths', () => {
    const one = '+---+---+\n| a | 1 |\n+---+---+\n';
    const tables = parseTables(one + one);
    assert.equal(tables.length, 2);
    assert.deepEqual(verticalTable(one + one, 1), [['a', '1']]);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  displayWidth,
  renderHorizontalTable,
  renderVerticalTable,
  type Cell,
} from '../../src/cli/table.js';

const ESC = '\u001b';

function lines(...rows: string[]): string {
  return rows.map((row) => `${row}\n`).join('');
}

void describe('displayWidth', () => {
  const cases: [string, number][] = [
    ['', 0],
    ['queue', 5],
    [`${ESC}[1;31mfailed${ESC}[0m`, 6],
    [`${ESC}]8;;http://x${ESC}\\link${ESC}]8;;${ESC}\\`, 4],
    [`${ESC}]0;title\u0007ok`, 2],
    ['計算ノード', 10],
    ['ｈｑ', 4],
    ['🚀 done', 7],
    ['e\u0301', 1],
    ['a\u200bb', 2],
    ['tab\there', 7],
  ];
  for (const [text, expected] of cases) {
    void it(`measures ${JSON.stringify(text)}`, () => {
      assert.equal(displayWidth(text), expected);
    });
  }
});

void describe('renderHorizontalTable', () => {
  void it('renders a header, a title rule and rows without separators', () => {
    const text = renderHorizontalTable(
      ['ID', 'State', 'Hostname'],
      [
        ['1', 'RUNNING', 'gpu-node-17'],
        ['2', 'IDLE', 'n3'],
      ],
      false,
    );
    assert.equal(
      text,
      lines(
        '+----+---------+-------------+',
        '| ID | State   | Hostname    |',
        '+----+---------+-------------+',
        '| 1  | RUNNING | gpu-node-17 |',
        '| 2  | IDLE    | n3          |',
        '+----+---------+-------------+',
      ),
    );
  });

  void it('sizes a column by its header when the header is widest', () => {
    assert.equal(
      renderHorizontalTable(['Manager Job ID'], [['42']], false),
      lines(
        '+----------------+',
        '| Manager Job ID |',
        '+----------------+',
        '| 42             |',
        '+----------------+',
      ),
    );
  });

  void it('stops after the title rule when there are no rows', () => {
    assert.equal(
      renderHorizontalTable(['ID', 'Name', 'State', 'Tasks'], [], false),
      lines(
        '+----+------+-------+-------+',
        '| ID | Name | State | Tasks |',
        '+----+------+-------+-------+',
      ),
    );
  });

  void it('right-justifies cells that ask for it', () => {
    const rows: Cell[][] = [
      [{ text: '7', justify: 'right' }, 'a'],
      [{ text: '1234', justify: 'right' }, 'b'],
      [{ text: '56', justify: 'left' }, 'c'],
    ];
    assert.equal(
      renderHorizontalTable(['ID', 'Name'], rows, false),
      lines(
        '+------+------+',
        '| ID   | Name |',
        '+------+------+',
        '|    7 | a    |',
        '| 1234 | b    |',
        '| 56   | c    |',
        '+------+------+',
      ),
    );
  });

  void it('renders multi-line cells as continuation lines with blank neighbours', () => {
    const rows: Cell[][] = [
      ['1', 'FAILED (1)\nFINISHED (10)', 'x'],
      ['2', 'RUNNING', 'line one\nline two\nline three'],
    ];
    assert.equal(
      renderHorizontalTable(['ID', 'State', 'Note'], rows, false),
      lines(
        '+----+---------------+------------+',
        '| ID | State         | Note       |',
        '+----+---------------+------------+',
        '| 1  | FAILED (1)    | x          |',
        '|    | FINISHED (10) |            |',
        '| 2  | RUNNING       | line one   |',
        '|    |               | line two   |',
        '|    |               | line three |',
        '+----+---------------+------------+',
      ),
    );
  });

  void it('keeps the lines of a right-justified multi-line cell aligned as a block', () => {
    assert.equal(
      renderHorizontalTable(['Count'], [[{ text: '5\n100', justify: 'right' }], ['123456']], false),
      lines(
        '+--------+',
        '| Count  |',
        '+--------+',
        '|    5   |',
        '|    100 |',
        '| 123456 |',
        '+--------+',
      ),
    );
  });

  void it('treats line endings like Rust str::lines', () => {
    assert.equal(
      renderHorizontalTable(['A', 'B'], [['x\r\ny\n', 'z']], false),
      lines('+---+---+', '| A | B |', '+---+---+', '| x | z |', '| y |   |', '+---+---+'),
    );
  });

  void it('drops a row whose cells are all empty and blanks empty cells elsewhere', () => {
    assert.equal(
      renderHorizontalTable(
        ['A', 'B'],
        [
          ['', ''],
          ['', 'v'],
          ['w', ''],
        ],
        false,
      ),
      lines('+---+---+', '| A | B |', '+---+---+', '|   | v |', '| w |   |', '+---+---+'),
    );
  });

  void it('pads short rows and ignores surplus cells', () => {
    assert.equal(
      renderHorizontalTable(['A', 'B'], [['1'], ['2', '3', 'extra']], false),
      lines('+---+---+', '| A | B |', '+---+---+', '| 1 |   |', '| 2 | 3 |', '+---+---+'),
    );
  });

  void it('measures wide characters by terminal columns', () => {
    assert.equal(
      renderHorizontalTable(
        ['Host', 'Ok'],
        [
          ['東京', '✅'],
          ['osaka-1', 'no'],
        ],
        false,
      ),
      lines(
        '+---------+----+',
        '| Host    | Ok |',
        '+---------+----+',
        '| 東京    | ✅ |',
        '| osaka-1 | no |',
        '+---------+----+',
      ),
    );
  });

  void it('emits no escape codes when colours are off, whatever the styles', () => {
    const text = renderHorizontalTable(
      [{ text: 'State', style: { bold: true } }],
      [[{ text: 'FAILED', style: { color: 'red', bold: true } }]],
      false,
    );
    assert.ok(!text.includes(ESC));
    assert.equal(text, lines('+--------+', '| State  |', '+--------+', '| FAILED |', '+--------+'));
  });

  void it('wraps styled cells in SGR codes without changing the layout', () => {
    const text = renderHorizontalTable(
      [
        { text: 'ID', style: { bold: true } },
        { text: 'State', style: { bold: true } },
      ],
      [
        ['1', { text: 'FINISHED', style: { color: 'green' } }],
        ['2', { text: 'CANCELED', style: { color: 'magenta', bold: true } }],
        ['3', { text: 'FAILED', style: { color: 'brightRed' } }],
        ['4', { text: 'plain', style: {} }],
      ],
      true,
    );
    assert.equal(
      text,
      lines(
        '+----+----------+',
        `| ${ESC}[1mID${ESC}[0m | ${ESC}[1mState   ${ESC}[0m |`,
        '+----+----------+',
        `| 1  | ${ESC}[32mFINISHED${ESC}[0m |`,
        `| 2  | ${ESC}[1;35mCANCELED${ESC}[0m |`,
        `| 3  | ${ESC}[91mFAILED  ${ESC}[0m |`,
        '| 4  | plain    |',
        '+----+----------+',
      ),
    );
  });

  void it('ignores escape codes already inside cell text when sizing', () => {
    assert.equal(
      renderHorizontalTable(['Name'], [[`${ESC}[36mab${ESC}[0m`]], false),
      lines('+------+', '| Name |', '+------+', `| ${ESC}[36mab${ESC}[0m   |`, '+------+'),
    );
  });
});

void describe('renderVerticalTable', () => {
  void it('renders key/value rows between two rules', () => {
    assert.equal(
      renderVerticalTable(
        [
          ['Server UID', 'aB3dE9'],
          ['Client host', 'node1'],
          ['Client port', '43121'],
        ],
        false,
      ),
      lines(
        '+-------------+--------+',
        '| Server UID  | aB3dE9 |',
        '| Client host | node1  |',
        '| Client port | 43121  |',
        '+-------------+--------+',
      ),
    );
  });

  void it('renders multi-line values as continuation lines', () => {
    assert.equal(
      renderVerticalTable(
        [
          ['ID', '1'],
          ['State', 'RUNNING (2)\nFINISHED (3)'],
          ['Tasks', '5; Ids: 0-4'],
        ],
        false,
      ),
      lines(
        '+-------+--------------+',
        '| ID    | 1            |',
        '| State | RUNNING (2)  |',
        '|       | FINISHED (3) |',
        '| Tasks | 5; Ids: 0-4  |',
        '+-------+--------------+',
      ),
    );
  });

  void it('styles bold keys only when colours are on', () => {
    const rows: Cell[][] = [[{ text: 'Pid', style: { bold: true } }, '4242']];
    assert.equal(
      renderVerticalTable(rows, false),
      lines('+-----+------+', '| Pid | 4242 |', '+-----+------+'),
    );
    assert.equal(
      renderVerticalTable(rows, true),
      lines('+-----+------+', `| ${ESC}[1mPid${ESC}[0m | 4242 |`, '+-----+------+'),
    );
  });

  void it('renders unicode keys and values', () => {
    assert.equal(
      renderVerticalTable(
        [
          ['Název', 'úloha č. 1'],
          ['ホスト', 'n1'],
        ],
        false,
      ),
      lines(
        '+--------+------------+',
        '| Název  | úloha č. 1 |',
        '| ホスト | n1         |',
        '+--------+------------+',
      ),
    );
  });

  void it('renders an empty table as a lone corner, as upstream', () => {
    assert.equal(renderVerticalTable([], false), '+\n');
  });
});

/**
 * Text tables in the layout of upstream's `cli-table` 0.5 output. The e2e tests parse these
 * tables by splitting on `|` and `+-`, so the frame characters and the row structure matter
 * more than looks: no rules between data rows, and continuation lines of multi-line cells
 * keep the other cells blank.
 */

export type CellColor = 'red' | 'green' | 'yellow' | 'magenta' | 'cyan' | 'blue' | 'brightRed';

export type CellStyle = { bold?: boolean; color?: CellColor };

export type Cell = string | { text: string; justify?: 'left' | 'right'; style?: CellStyle };

const SGR_COLOR: Record<CellColor, string> = {
  red: '31',
  green: '32',
  yellow: '33',
  blue: '34',
  magenta: '35',
  cyan: '36',
  brightRed: '91',
};

const ESC = '\u001b';
const RESET = `${ESC}[0m`;

// East Asian Wide/Fullwidth blocks; the rest of the wide set is covered by emoji presentation.
const WIDE_RANGES: readonly (readonly [number, number])[] = [
  [0x1100, 0x115f],
  [0x2329, 0x232a],
  [0x2e80, 0x303e],
  [0x3041, 0x33ff],
  [0x3400, 0x4dbf],
  [0x4e00, 0x9fff],
  [0xa000, 0xa4cf],
  [0xa960, 0xa97f],
  [0xac00, 0xd7a3],
  [0xf900, 0xfaff],
  [0xfe10, 0xfe19],
  [0xfe30, 0xfe6f],
  [0xff00, 0xff60],
  [0xffe0, 0xffe6],
  [0x1b000, 0x1b2ff],
  [0x1f200, 0x1f2ff],
  [0x20000, 0x2fffd],
  [0x30000, 0x3fffd],
];

const ZERO_WIDTH = /^[\p{Mn}\p{Me}\p{Cf}\p{Cc}]$/u;
const EMOJI_PRESENTATION = /^\p{Emoji_Presentation}$/u;

function charWidth(c: string): number {
  const cp = c.codePointAt(0) ?? 0;
  if (cp === 0xad) {
    // Soft hyphen is a format character that terminals still draw.
    return 1;
  }
  if (ZERO_WIDTH.test(c) || (cp >= 0x1160 && cp <= 0x11ff)) {
    return 0;
  }
  for (const [low, high] of WIDE_RANGES) {
    if (cp >= low && cp <= high) {
      return 2;
    }
  }
  return EMOJI_PRESENTATION.test(c) ? 2 : 1;
}

/**
 * Terminal columns a string occupies: ANSI escape sequences count as nothing and East Asian
 * wide characters and emoji as two, so coloured or CJK cells still line up.
 */
export function displayWidth(text: string): number {
  let width = 0;
  const chars = Array.from(text);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i] ?? '';
    if (c !== ESC) {
      width += charWidth(c);
      continue;
    }
    const kind = chars[++i];
    if (kind === '[') {
      // CSI: parameters until a final byte in 0x40..0x7c.
      for (i++; i < chars.length; i++) {
        const code = (chars[i] ?? '').codePointAt(0) ?? 0;
        if (code >= 0x40 && code <= 0x7c) {
          break;
        }
      }
    } else if (kind === ']') {
      // OSC: runs until BEL or ESC \.
      let previous = kind;
      for (i++; i < chars.length; i++) {
        const current = chars[i] ?? '';
        if (current === '\u0007' || (current === '\\' && previous === ESC)) {
          break;
        }
        previous = current;
      }
    } else if (kind !== undefined && kind !== '\\') {
      width += charWidth(kind);
    }
  }
  return width;
}

type PreparedCell = {
  lines: string[];
  width: number;
  justify: 'left' | 'right';
  style: CellStyle | undefined;
};

/** Splits like Rust's `str::lines`: no line for a trailing newline, `\r\n` counts as one break. */
function splitLines(text: string): string[] {
  if (text === '') {
    return [];
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') {
    lines.pop();
  }
  return lines.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
}

function prepare(cell: Cell | undefined): PreparedCell {
  if (cell === undefined) {
    return { lines: [], width: 0, justify: 'left', style: undefined };
  }
  const text = typeof cell === 'string' ? cell : cell.text;
  const lines = splitLines(text);
  return {
    lines,
    width: lines.reduce((max, line) => Math.max(max, displayWidth(line)), 0),
    justify: typeof cell === 'string' ? 'left' : (cell.justify ?? 'left'),
    style: typeof cell === 'string' ? undefined : cell.style,
  };
}

function styleOpen(style: CellStyle | undefined): string {
  if (style === undefined) {
    return '';
  }
  const codes: string[] = [];
  if (style.bold === true) {
    codes.push('1');
  }
  if (style.color !== undefined) {
    codes.push(SGR_COLOR[style.color]);
  }
  return codes.length === 0 ? '' : `${ESC}[${codes.join(';')}m`;
}

function rule(widths: readonly number[]): string {
  if (widths.length === 0) {
    return '+\n';
  }
  return `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+\n`;
}

function renderRow(cells: readonly PreparedCell[], widths: readonly number[], colors: boolean) {
  // A row as tall as its tallest cell; a row whose cells are all empty takes no lines at all.
  const height = cells.reduce((max, cell) => Math.max(max, cell.lines.length), 0);
  let out = '';
  for (let lineIndex = 0; lineIndex < height; lineIndex++) {
    const fields = widths.map((width, column) => {
      const cell = cells[column] ?? prepare(undefined);
      const line = cell.lines[lineIndex] ?? '';
      // Right justification shifts the whole cell block, so its lines stay aligned together.
      const indent = cell.justify === 'right' ? width - cell.width : 0;
      const field = ' '.repeat(indent) + line;
      const padded = field + ' '.repeat(Math.max(0, width - indent - displayWidth(line)));
      const open = colors && line !== '' ? styleOpen(cell.style) : '';
      return open === '' ? padded : `${open}${padded}${RESET}`;
    });
    out += `| ${fields.join(' | ')} |\n`;
  }
  return out;
}

function columnWidths(rows: readonly (readonly PreparedCell[])[], columns: number): number[] {
  const widths = new Array<number>(columns).fill(0);
  for (const row of rows) {
    for (let column = 0; column < columns; column++) {
      widths[column] = Math.max(widths[column] ?? 0, row[column]?.width ?? 0);
    }
  }
  return widths;
}

function prepareRows(rows: readonly (readonly Cell[])[], columns: number): PreparedCell[][] {
  // Missing cells render blank and surplus cells are dropped, so every line has one frame.
  return rows.map((row) => Array.from({ length: columns }, (_, column) => prepare(row[column])));
}

/**
 * A table with a header: top rule, header, rule, data rows, bottom rule. Like upstream, a table
 * without data rows stops after the rule under the header (there is no bottom rule to close).
 */
export function renderHorizontalTable(
  header: readonly Cell[],
  rows: readonly (readonly Cell[])[],
  colors: boolean,
): string {
  const columns = header.length > 0 ? header.length : (rows[0]?.length ?? 0);
  const title = prepareRows([header], columns);
  const body = prepareRows(rows, columns);
  const widths = columnWidths([...title, ...body], columns);
  const line = rule(widths);
  let out = line + renderRow(title[0] ?? [], widths, colors) + line;
  for (const row of body) {
    out += renderRow(row, widths, colors);
  }
  if (body.length > 0) {
    out += line;
  }
  return out;
}

/** A key/value table without header: top rule, rows, bottom rule. */
export function renderVerticalTable(rows: readonly (readonly Cell[])[], colors: boolean): string {
  const columns = rows[0]?.length ?? 0;
  const body = prepareRows(rows, columns);
  const widths = columnWidths(body, columns);
  const line = rule(widths);
  let out = line;
  for (const row of body) {
    out += renderRow(row, widths, colors);
  }
  if (body.length > 0) {
    out += line;
  }
  return out;
}

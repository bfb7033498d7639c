/**
 * Text widgets of the terminal dashboard: each returns plain lines of exactly the width asked
 * for (ANSI colours included, which take no columns), so screens are laid out by joining lines.
 * Pure functions: unit-tested against exact strings.
 */

const ESC = '\x1b[';
const ANSI = /\x1b\[[0-9;]*m/g;

export const RESET = `${ESC}0m`;

/** Text in an SGR style (`1` bold, `7` inverse, `31` red...). */
export function style(text: string, sgr: string): string {
  return text === '' ? '' : `${ESC}${sgr}m${text}${RESET}`;
}

export const bold = (t: string): string => style(t, '1');
export const dim = (t: string): string => style(t, '2');
export const inverse = (t: string): string => style(t, '7');
export const yellow = (t: string): string => style(t, '33');
export const green = (t: string): string => style(t, '32');
export const red = (t: string): string => style(t, '31');
export const cyan = (t: string): string => style(t, '36');
export const magenta = (t: string): string => style(t, '35');
export const lightBlue = (t: string): string => style(t, '94');

/** Columns `text` takes on a terminal (escape sequences take none). */
export function visibleWidth(text: string): number {
  let n = 0;
  for (const ch of text.replace(ANSI, '')) {
    const code = ch.codePointAt(0)!;
    n += code >= 0x1100 && isWide(code) ? 2 : 1;
  }
  return n;
}

function isWide(code: number): boolean {
  return (
    (code >= 0x1100 && code <= 0x115f) ||
    (code >= 0x2e80 && code <= 0xa4cf) ||
    (code >= 0xac00 && code <= 0xd7a3) ||
    (code >= 0xf900 && code <= 0xfaff) ||
    (code >= 0xfe30 && code <= 0xfe4f) ||
    (code >= 0xff00 && code <= 0xff60) ||
    (code >= 0xffe0 && code <= 0xffe6) ||
    (code >= 0x1f300 && code <= 0x1faff)
  );
}

/** `text` cut or padded to exactly `width` columns, keeping its colours intact. */
export function fit(text: string, width: number): string {
  if (width <= 0) {
    return '';
  }
  let out = '';
  let used = 0;
  let styled = false;
  let i = 0;
  while (i < text.length) {
    if (text.startsWith(ESC, i)) {
      const end = text.indexOf('m', i);
      if (end < 0) {
        break;
      }
      const seq = text.slice(i, end + 1);
      out += seq;
      styled = seq !== RESET;
      i = end + 1;
      continue;
    }
    const ch = String.fromCodePoint(text.codePointAt(i)!);
    const w = visibleWidth(ch);
    if (used + w > width) {
      break;
    }
    out += ch;
    used += w;
    i += ch.length;
  }
  if (styled) {
    out += RESET;
  }
  return out + ' '.repeat(width - used);
}

/** A usage bar: `████░░░░ (50%)`, green up to 50%, yellow up to 70%, red above. */
export function usageBar(
  fraction: number,
  width: number,
  colourOf?: (t: string) => string,
): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const label = ` (${Math.round(f * 100)}%)`;
  const cells = Math.max(1, width - label.length);
  const full = Math.round(f * cells);
  const colour = colourOf ?? (f <= 0.5 ? green : f <= 0.7 ? yellow : red);
  return fit(colour('█'.repeat(full)) + dim('░'.repeat(cells - full)) + label, width);
}

/** A progress bar of task states: finished, failed, running, waiting, in that order. */
export function progressBar(
  counts: { finished: number; failed: number; canceled: number; aborted: number; running: number },
  total: number,
  width: number,
): string {
  if (total <= 0 || width <= 0) {
    return fit('', width);
  }
  const part = (n: number): number => Math.round((n / total) * width);
  const done = part(counts.finished);
  const bad = Math.min(width - done, part(counts.failed + counts.canceled + counts.aborted));
  const running = Math.min(width - done - bad, part(counts.running));
  const rest = width - done - bad - running;
  return (
    green('█'.repeat(done)) +
    red('█'.repeat(bad)) +
    yellow('▒'.repeat(running)) +
    dim('░'.repeat(rest))
  );
}

const SPARKS = '▁▂▃▄▅▆▇█';

/** One line of `▁▂▃▄▅▆▇█`, one cell per value, scaled to `max` (default: the largest value). */
export function sparkline(values: readonly number[], max = Math.max(1, ...values)): string {
  return values
    .map((v) => {
      const f = max > 0 ? Math.min(1, Math.max(0, v / max)) : 0;
      return SPARKS[Math.min(SPARKS.length - 1, Math.round(f * (SPARKS.length - 1)))]!;
    })
    .join('');
}

/** A box with a title in its top border around `lines`, exactly `width` x `height`. */
export function box(
  title: string,
  lines: readonly string[],
  width: number,
  height: number,
): string[] {
  const inner = Math.max(0, width - 2);
  const head = fit(title === '' ? '' : ` ${title} `, Math.min(inner, visibleWidth(title) + 2));
  const out = [`┌${head}${'─'.repeat(Math.max(0, inner - visibleWidth(head)))}┐`];
  for (let i = 0; i < height - 2; i++) {
    out.push(`│${fit(lines[i] ?? '', inner)}│`);
  }
  out.push(`└${'─'.repeat(inner)}┘`);
  return out;
}

export interface Column {
  title: string;
  width: number;
}

/**
 * A header and the rows that fit in `height - 1` lines, scrolled so that `selected` (a row
 * index, or -1) is visible and shown inverted.
 */
export function table(
  columns: readonly Column[],
  rows: readonly string[][],
  height: number,
  selected = -1,
): string[] {
  const line = (cells: readonly string[]): string =>
    columns.map((c, i) => fit(cells[i] ?? '', c.width)).join(' ');
  const out = [bold(line(columns.map((c) => c.title)))];
  const visible = Math.max(0, height - 1);
  const first = selected >= visible ? selected - visible + 1 : 0;
  for (let i = first; i < Math.min(rows.length, first + visible); i++) {
    const text = line(rows[i]!);
    out.push(i === selected ? inverse(text.replace(/\x1b\[[0-9;]*m/g, '')) : text);
  }
  return out;
}

/** Two columns of lines side by side (`left` gets `leftWidth` columns). */
export function sideBySide(
  left: readonly string[],
  right: readonly string[],
  leftWidth: number,
): string[] {
  const n = Math.max(left.length, right.length);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    out.push(fit(left[i] ?? '', leftWidth) + (right[i] ?? ''));
  }
  return out;
}

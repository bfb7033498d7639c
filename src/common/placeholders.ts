/**
 * `%{NAME}` placeholders in task paths. Resolution happens in two passes, like upstream:
 * at submit time on the server side of the client (JOB_ID, SUBMIT_DIR, SERVER_UID) and when a
 * task starts on the worker (all of them, CWD last). Unknown placeholders are left as they are.
 */
import * as path from 'node:path';

export const KNOWN_PLACEHOLDERS = [
  'JOB_ID',
  'TASK_ID',
  'INSTANCE_ID',
  'SUBMIT_DIR',
  'CWD',
  'SERVER_UID',
] as const;

export type PlaceholderName = (typeof KNOWN_PLACEHOLDERS)[number];
export type PlaceholderValues = Partial<Record<PlaceholderName, string>>;

const PATTERN = /%\{([^}]*)\}/g;

export function fillPlaceholders(text: string, values: PlaceholderValues): string {
  return text.replace(PATTERN, (whole, name: string) => {
    const value = values[name as PlaceholderName];
    return value === undefined ? whole : value;
  });
}

export function hasPlaceholders(text: string): boolean {
  return /%\{[^}]*\}/.test(text);
}

/** Placeholder names used in `text` that hq does not know (the client warns about them). */
export function unknownPlaceholders(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(PATTERN)) {
    const name = m[1] ?? '';
    if (!(KNOWN_PLACEHOLDERS as readonly string[]).includes(name)) {
      out.push(name);
    }
  }
  return out;
}

export interface ResolvedTaskPaths {
  cwd: string;
  stdout: string | null;
  stderr: string | null;
}

/** The worker-side pass: everything known, cwd first, then stdout/stderr relative to cwd. */
export function resolveTaskPaths(
  input: { cwd: string; stdout: string | null; stderr: string | null },
  values: Omit<PlaceholderValues, 'CWD'> & { SUBMIT_DIR: string },
): ResolvedTaskPaths {
  const cwd = path.resolve(values.SUBMIT_DIR, fillPlaceholders(input.cwd, values));
  const all = { ...values, CWD: cwd };
  const file = (p: string | null): string | null =>
    p === null ? null : path.resolve(cwd, fillPlaceholders(p, all));
  return { cwd, stdout: file(input.stdout), stderr: file(input.stderr) };
}

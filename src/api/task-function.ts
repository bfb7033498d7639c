/**
 * JavaScript function tasks. A closure cannot travel to another process, so a function task
 * names a module export: the worker runs Node with a small inline runner that imports the
 * module by URL and calls the export with JSON arguments. To the server it is an ordinary
 * program task (as Python's function tasks are), so nothing on the worker needs installing.
 */

/** The property holding a tagged function's reference (not enumerable). */
const TAG = 'hqTaskFunction';

/** Where a tagged function lives: the module the worker imports and the export it calls. */
export interface TaskFunctionRef {
  moduleUrl: string;
  exportName: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any function shape may be tagged
export type AnyFunction = (...args: any[]) => unknown;

/** A function tagged by `taskFunction`: still callable locally, and usable in `job.function`. */
export type TaskFunction<F extends AnyFunction = AnyFunction> = F & {
  readonly hqTaskFunction: TaskFunctionRef;
};

/**
 * Tags `fn` as the export `exportName` of the module `moduleUrl` (pass `import.meta.url`).
 * The module is imported again on the worker, so it should have no top-level side effects.
 */
export function taskFunction<F extends AnyFunction>(
  moduleUrl: string | URL,
  exportName: string,
  fn: F,
): TaskFunction<F> {
  if (typeof fn !== 'function') {
    throw new TypeError('taskFunction: fn must be a function');
  }
  const url = String(moduleUrl);
  try {
    new URL(url);
  } catch {
    throw new TypeError(
      `taskFunction: ${JSON.stringify(url)} is not a module URL (pass import.meta.url)`,
    );
  }
  if (typeof exportName !== 'string' || exportName === '') {
    throw new TypeError('taskFunction: exportName must be a non-empty string');
  }
  // Defined, not assigned: the function object stays as it was for local callers.
  Object.defineProperty(fn, TAG, { value: { moduleUrl: url, exportName }, enumerable: false });
  return fn as TaskFunction<F>;
}

/** The tag of a function, or null when it was not made by `taskFunction`. */
export function taskFunctionRef(fn: unknown): TaskFunctionRef | null {
  if (typeof fn !== 'function') {
    return null;
  }
  const ref = (fn as Partial<Record<typeof TAG, TaskFunctionRef>>)[TAG];
  return ref ?? null;
}

/**
 * What the worker runs for a function task (`node --input-type=module -e RUNNER`): it reads
 * `{module, export, args}` from stdin, awaits the export, and on a throw writes the stack to
 * $HQ_ERROR_FILENAME (the worker makes that file the task's error) and exits 1. Inline, so the
 * worker needs nothing installed; the return value is ignored, as in Python.
 */
export const TASK_RUNNER = [
  "import { writeFileSync } from 'node:fs';",
  'const chunks = [];',
  'for await (const c of process.stdin) chunks.push(c);',
  'try {',
  "  const spec = JSON.parse(Buffer.concat(chunks).toString('utf8'));",
  '  const mod = await import(spec.module);',
  '  const fn = mod[spec.export];',
  "  if (typeof fn !== 'function') {",
  '    throw new TypeError(`Module ${spec.module} has no exported function ${spec.export}`);',
  '  }',
  '  await fn(...spec.args);',
  '} catch (err) {',
  '  const text = err instanceof Error && err.stack ? err.stack : String(err);',
  "  process.stderr.write(text + '\\n');",
  '  if (process.env.HQ_ERROR_FILENAME) writeFileSync(process.env.HQ_ERROR_FILENAME, text);',
  '  process.exit(1);',
  '}',
].join('\n');

export interface NodeEnvOptions {
  /** The Node executable on the worker (default `node` from the worker's PATH). */
  nodeBin?: string;
  /** Extra Node flags before the runner, e.g. `['--import', 'tsx']` for TypeScript modules. */
  nodeArgs?: string[];
  /** Shell code run first (e.g. `module load nodejs`); the task then goes through `shell -c`. */
  prologue?: string | null;
  /** The shell for `prologue` (default `bash`). */
  shell?: string;
}

function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** How function tasks start Node on the worker (the counterpart of Python's PythonEnv). */
export class NodeEnv {
  readonly nodeBin: string;
  readonly nodeArgs: readonly string[];
  readonly prologue: string | null;
  readonly shell: string;

  constructor(options: NodeEnvOptions = {}) {
    this.nodeBin = options.nodeBin ?? 'node';
    this.nodeArgs = [...(options.nodeArgs ?? [])];
    this.prologue = options.prologue ?? null;
    this.shell = options.shell ?? 'bash';
  }

  /** The program arguments of a function task. */
  args(): string[] {
    const node = [...this.nodeArgs, '--input-type=module', '-e', TASK_RUNNER];
    if (this.prologue === null) {
      return [this.nodeBin, ...node];
    }
    // nodeBin stays shell text here (as python_bin in Python's prologue form), the rest is quoted.
    const command = [this.nodeBin, ...node.map(shellQuote)].join(' ');
    return [this.shell, '-c', `${this.prologue}\n\n${command}`];
  }
}

/**
 * Throws a TypeError unless `value` survives JSON unchanged (null, booleans, finite numbers,
 * strings, arrays and plain objects of those): the worker gets exactly what was passed.
 */
export function checkJsonArgs(value: unknown, where: string, seen = new Set<object>()): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) {
        throw new TypeError(`${where}: ${value} does not survive JSON`);
      }
      return;
    case 'object': {
      if (value === null) {
        return;
      }
      if (seen.has(value)) {
        throw new TypeError(`${where}: a cyclic value cannot be sent as JSON`);
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) {
        const kind = (value as { constructor?: { name?: string } }).constructor?.name ?? 'object';
        throw new TypeError(`${where}: a ${kind} is not plain JSON (pass plain objects)`);
      }
      seen.add(value);
      if (Array.isArray(value)) {
        value.forEach((v: unknown, i) => checkJsonArgs(v, `${where}[${i}]`, seen));
      } else {
        for (const [k, v] of Object.entries(value)) {
          checkJsonArgs(v, `${where}.${k}`, seen);
        }
      }
      seen.delete(value);
      return;
    }
    default:
      throw new TypeError(`${where}: a ${typeof value} cannot be sent as JSON`);
  }
}

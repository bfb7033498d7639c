/**
 * A job as the TypeScript API builds it, and its conversion into the `ApiJob` of job-spec.ts,
 * which the Python package also produces: both then share one set of defaults and checks.
 * Building a job needs no server; the conversion happens at submit, when the client's
 * NodeEnv and the submit directory are known.
 */
import * as path from 'node:path';
import { parseDuration } from '../common/duration.js';
import type { ApiAmount, ApiJob, ApiResourceRequest, ApiStdio, ApiTask } from './job-spec.js';
import { InvalidJobError } from './api-errors.js';
import {
  NodeEnv,
  checkJsonArgs,
  taskFunctionRef,
  type AnyFunction,
  type TaskFunction,
  type TaskFunctionRef,
} from './task-function.js';

/** An amount of a resource: an integer is whole units, a fraction is rounded up as upstream, a string is the CLI grammar (`"all"`, `"2 compact!"`). */
export type Amount = number | string;

/** One resource request; an array of them in `resources` means variants (the first that fits). */
export interface ResourceRequest {
  /** CPUs (default 1 for a single-node task). */
  cpus?: Amount;
  /** Other resources by name, e.g. `{ gpus: 1 }`. */
  resources?: Record<string, Amount>;
  /** Nodes of a multi-node task. */
  nNodes?: number;
  /** The least time the task needs on a worker: seconds, or a duration text such as `"10m"`. */
  minTime?: number | string;
}

/**
 * Where a task's stdout or stderr goes: `undefined` is the API default
 * (`%{CWD}/%{TASK_ID}.stdout`), `null` no file, a string a path (with placeholders), and an
 * object a path (`null`: the CLI's default) with `onClose: 'rm-if-finished'` to delete the file
 * when the task succeeds.
 */
export type Stdio =
  string | { path: string | null; onClose?: 'none' | 'rm-if-finished' } | null | undefined;

/** How often a task may be restarted after its worker was lost. */
export type CrashLimit = number | 'never-restart' | 'unlimited';

export interface TaskOptions {
  /** Merged over the job's `defaultEnv`. */
  env?: Record<string, string>;
  /** Working directory (default: the job's `defaultWorkdir`, else the submit directory). */
  cwd?: string;
  stdout?: Stdio;
  stderr?: Stdio;
  stdin?: string | Uint8Array;
  /** Tasks of the same job that must finish first. */
  deps?: readonly Task[];
  /** A label for messages (default: the id, or `export/id` for function tasks). */
  name?: string;
  priority?: number;
  resources?: ResourceRequest | readonly ResourceRequest[];
  /** null: the server's default (5). */
  crashLimit?: CrashLimit | null;
}

export interface ProgramOptions extends TaskOptions {
  /** Give the task a temporary directory ($HQ_TASK_DIR) removed when it ends. */
  taskDir?: boolean;
}

export interface FunctionOptions<F extends AnyFunction = AnyFunction> extends Omit<
  TaskOptions,
  'stdin'
> {
  /** The arguments, sent as JSON (checked at once: a TypeError if they do not survive JSON). */
  args?: Parameters<F>;
}

export interface JobOptions {
  /** Default: `'TS API job'`. */
  name?: string;
  /** Failed tasks after which the rest is canceled; null for no limit (default 1). */
  maxFails?: number | null;
  defaultEnv?: Record<string, string>;
  /** The working directory of tasks without `cwd` (made absolute now). */
  defaultWorkdir?: string;
}

type TaskBody =
  | { kind: 'program'; args: string[]; stdin: string | Uint8Array | null; taskDir: boolean }
  | { kind: 'function'; ref: TaskFunctionRef; args: unknown[] };

/** A task of a job: its id is its place in creation order; pass it in `deps`. */
export class Task {
  readonly job: Job;
  readonly id: number;
  readonly kind: 'program' | 'function';
  /** The label used in messages (null: the id). */
  readonly name: string | null;
  readonly deps: readonly Task[];
  readonly #body: TaskBody;
  readonly #options: TaskOptions;

  /** Made by `Job.program` and `Job.function`. */
  constructor(
    job: Job,
    id: number,
    body: TaskBody,
    options: TaskOptions,
    name: string | null,
    deps: readonly Task[],
  ) {
    this.job = job;
    this.id = id;
    this.kind = body.kind;
    this.name = name;
    this.deps = deps;
    this.#body = body;
    this.#options = options;
  }

  /** The name, else the id. */
  get label(): string {
    return this.name ?? String(this.id);
  }

  /** @internal The task in job-spec's shape. */
  toApiTask(nodeEnv: NodeEnv): ApiTask {
    const o = this.#options;
    const b = this.#body;
    const job = this.job;
    const task: ApiTask = {
      id: this.id,
      args: b.kind === 'program' ? [...b.args] : nodeEnv.args(),
      env: { ...job.defaultEnv, ...o.env },
    };
    const cwd = o.cwd ?? job.defaultWorkdir;
    if (cwd !== null) {
      task.cwd = cwd;
    }
    if (o.stdout !== undefined) {
      task.stdout = stdio(o.stdout);
    }
    if (o.stderr !== undefined) {
      task.stderr = stdio(o.stderr);
    }
    if (b.kind === 'program') {
      if (b.stdin !== null) {
        task.stdin = Buffer.from(b.stdin).toString('base64');
      }
      task.taskDir = b.taskDir;
    } else {
      const spec = { module: b.ref.moduleUrl, export: b.ref.exportName, args: b.args };
      task.stdin = Buffer.from(JSON.stringify(spec), 'utf8').toString('base64');
      task.taskDir = true;
    }
    task.deps = this.deps.map((d) => d.id);
    if (o.priority !== undefined) {
      task.priority = o.priority;
    }
    if (o.resources !== undefined) {
      const list: readonly ResourceRequest[] = isRequestList(o.resources)
        ? o.resources
        : [o.resources];
      task.resources = list.map((r, i) => resourceRequest(r, `task ${this.id}.resources[${i}]`));
    }
    if (o.crashLimit !== undefined && o.crashLimit !== null) {
      // job-spec accepts the two words too, though ApiTask's type names only numbers.
      task.crashLimit = o.crashLimit;
    }
    return task;
  }
}

function isRequestList(
  r: ResourceRequest | readonly ResourceRequest[],
): r is readonly ResourceRequest[] {
  return Array.isArray(r);
}

function stdio(value: Exclude<Stdio, undefined>): ApiStdio | null {
  if (value === null) {
    return null;
  }
  if (typeof value === 'string') {
    return { path: value };
  }
  return { path: value.path, onClose: value.onClose ?? 'none' };
}

/** JSON keeps no difference between 2 and 2.0, so a fraction travels tagged (job-spec's `{ f }`). */
function amount(value: Amount): ApiAmount {
  return typeof value === 'number' && !Number.isInteger(value) ? { f: value } : value;
}

function resourceRequest(r: ResourceRequest, where: string): ApiResourceRequest {
  const out: ApiResourceRequest = {};
  const resources: Record<string, ApiAmount> = {};
  if (r.cpus !== undefined) {
    resources['cpus'] = amount(r.cpus);
  }
  for (const [name, v] of Object.entries(r.resources ?? {})) {
    if (name === 'cpus' && r.cpus !== undefined) {
      throw new InvalidJobError(
        `Invalid job: ${where}: cpus given twice (cpus and resources.cpus)`,
      );
    }
    resources[name] = amount(v);
  }
  if (Object.keys(resources).length > 0) {
    out.resources = resources;
  }
  if (r.nNodes !== undefined) {
    out.nNodes = r.nNodes;
  }
  if (r.minTime !== undefined) {
    if (typeof r.minTime === 'string') {
      try {
        out.minTime = parseDuration(r.minTime) / 1000;
      } catch (e) {
        throw new InvalidJobError(
          `Invalid job: ${where}.minTime: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
    } else {
      out.minTime = r.minTime;
    }
  }
  return out;
}

export const TS_DEFAULT_JOB_NAME = 'TS API job';

/** A job being built: tasks get ids 0, 1, 2... in the order they are created. */
export class Job {
  readonly name: string;
  readonly maxFails: number | null;
  readonly defaultEnv: Readonly<Record<string, string>>;
  /** Absolute, or null for the submit directory. */
  readonly defaultWorkdir: string | null;
  readonly #tasks: Task[] = [];

  constructor(options: JobOptions = {}) {
    this.name = options.name ?? TS_DEFAULT_JOB_NAME;
    this.maxFails = options.maxFails === undefined ? 1 : options.maxFails;
    this.defaultEnv = { ...options.defaultEnv };
    this.defaultWorkdir =
      options.defaultWorkdir === undefined ? null : path.resolve(options.defaultWorkdir);
  }

  get tasks(): readonly Task[] {
    return this.#tasks;
  }

  /** Adds a task that runs `args` (a program and its arguments; a string is the program alone). */
  program(args: string | readonly string[], options: ProgramOptions = {}): Task {
    const list = typeof args === 'string' ? [args] : [...args];
    if (list.length === 0 || list.some((a) => typeof a !== 'string')) {
      throw new InvalidJobError(
        'Invalid job: program: expected a non-empty list of strings as the arguments',
      );
    }
    const stdin = options.stdin ?? null;
    if (stdin !== null && typeof stdin !== 'string' && !(stdin instanceof Uint8Array)) {
      throw new InvalidJobError('Invalid job: program: stdin must be a string or a Uint8Array');
    }
    return this.#add(
      { kind: 'program', args: list, stdin, taskDir: options.taskDir === true },
      options,
      () => null,
    );
  }

  /**
   * Adds a task that calls `fn` (made by `taskFunction`) on a worker with `args`; it runs
   * with a task directory, and its default name is `export/id`.
   */
  function<F extends AnyFunction>(fn: TaskFunction<F>, options: FunctionOptions<F> = {}): Task {
    const ref = taskFunctionRef(fn);
    if (ref === null) {
      throw new TypeError(
        'job.function: fn must be tagged with taskFunction(import.meta.url, exportName, fn)',
      );
    }
    const args: unknown[] = [...((options.args ?? []) as unknown[])];
    checkJsonArgs(args, `job.function(${ref.exportName}) args`);
    return this.#add(
      { kind: 'function', ref, args: JSON.parse(JSON.stringify(args)) as unknown[] },
      options,
      (id) => `${ref.exportName}/${id}`,
    );
  }

  #add(body: TaskBody, options: TaskOptions, defaultName: (id: number) => string | null): Task {
    const id = this.#tasks.length;
    const deps = [...(options.deps ?? [])];
    for (const d of deps) {
      if (!(d instanceof Task) || d.job !== this) {
        throw new InvalidJobError(
          `Invalid job: task ${id}.deps: a dependency must be a task of the same job`,
        );
      }
    }
    // A copy: changing the caller's object later does not change the task.
    const copy: TaskOptions = { ...options };
    const task = new Task(this, id, body, copy, options.name ?? defaultName(id), deps);
    this.#tasks.push(task);
    return task;
  }

  /** The job in job-spec's shape, as `submit` sends it. */
  toApiJob(options: { nodeEnv?: NodeEnv; submitDir?: string } = {}): ApiJob {
    const nodeEnv = options.nodeEnv ?? new NodeEnv();
    return {
      name: this.name,
      maxFails: this.maxFails,
      tasks: this.#tasks.map((t) => t.toApiTask(nodeEnv)),
      submitDir: path.resolve(options.submitDir ?? process.cwd()),
    };
  }
}

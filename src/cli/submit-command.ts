/** `hq submit` / `hq job submit`: builds one array job from the command line. */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { HqError } from '../common/errors.js';
import { idRangesCount, parseIdRanges, type IdRange } from '../common/id-set.js';
import { logger } from '../common/log.js';
import { unknownPlaceholders } from '../common/placeholders.js';
import {
  parseDirectives,
  readDirectivesFile,
  splitShellWords,
  type ScriptMetadata,
} from '../common/directives.js';
import {
  parseAllocRequest,
  parseResourceRequest,
  parseResourceWeight,
  type ResourceRequestEntry,
} from '../common/resources.js';
import { openSession } from '../client/session.js';
import type {
  ArraySubmit,
  CrashLimit,
  StdioDef,
  TaskDesc,
  TaskNotification,
} from '../transport/messages.js';
import { printJobSubmitted } from './render.js';
import {
  clapStyle,
  collect,
  durationOption,
  makeContext,
  parseIntOption,
  withGlobals,
} from './context.js';
import { printLine } from './output.js';

const log = logger('hq::client');

const DEFAULT_STDOUT = '%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stdout';
const DEFAULT_STDERR = '%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stderr';
const DEFAULT_CRASH_LIMIT = 5;
const MANY_OUTPUT_FILES_WARNING = 1000;

export interface SubmitOpts {
  name?: string;
  maxFails?: string;
  nodes?: string;
  cpus?: string;
  resource?: string[];
  timeRequest?: string;
  weight?: string;
  pin?: string;
  cwd?: string;
  stdout?: string;
  stderr?: string;
  env?: string[];
  eachLine?: string;
  fromJson?: string;
  array?: string;
  priority?: string;
  timeLimit?: string;
  stream?: string;
  /** `--log`: the seeds' name of `--stream`. */
  log?: string;
  taskDir?: boolean;
  crashLimit?: string;
  job?: string;
  wait?: boolean;
  progress?: boolean;
  onNotify?: string;
  stdin?: boolean;
  directives?: string;
}

function parseStdio(text: string | undefined, fallback: string): StdioDef {
  if (text === undefined) {
    return { kind: 'file', path: fallback, rmIfFinished: false };
  }
  if (text === 'none') {
    return { kind: 'null' };
  }
  const suffix = ':rm-if-finished';
  if (text.endsWith(suffix)) {
    const p = text.slice(0, -suffix.length);
    return { kind: 'file', path: p === '' ? fallback : p, rmIfFinished: true };
  }
  return { kind: 'file', path: text, rmIfFinished: false };
}

function parseCrashLimit(text: string | undefined): CrashLimit {
  if (text === undefined) {
    return DEFAULT_CRASH_LIMIT;
  }
  if (text === 'never-restart' || text === 'unlimited') {
    return text;
  }
  const n = parseIntOption('--crash-limit <CRASH_LIMIT>', text, 0, 65535);
  if (n === 0) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      "invalid value '0' for '--crash-limit <CRASH_LIMIT>': Crash limit 0 is not allowed, use 'never-restart' or a positive number",
    );
  }
  return n;
}

function parseEnv(items: string[] | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const item of items ?? []) {
    const eq = item.indexOf('=');
    const key = eq === -1 ? item : item.slice(0, eq);
    const value = eq === -1 ? '' : item.slice(eq + 1);
    if (key === '') {
      throw new HqError(
        'HQ_INVALID_ARGUMENT',
        `Invalid environment variable '${item}': the name is empty`,
      );
    }
    if (key in env) {
      log.warn(`Environment variable ${key} was specified more than once; only one value is kept`);
    }
    env[key] = value;
  }
  return env;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(sortKeys);
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    return Object.fromEntries(entries.map(([k, v]) => [k, sortKeys(v)]));
  }
  return value;
}

function readEntries(opts: SubmitOpts): string[] | null {
  if (opts.eachLine !== undefined) {
    let data: string;
    try {
      data = fs.readFileSync(opts.eachLine, 'utf8');
    } catch (e) {
      throw new HqError(
        'HQ_INVALID_ARGUMENT',
        `Cannot read --each-line file ${opts.eachLine}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory (os error 2)' : String(e)}`,
      );
    }
    const lines = data.split('\n');
    if (lines.length > 0 && lines[lines.length - 1] === '') {
      lines.pop();
    }
    return lines;
  }
  if (opts.fromJson !== undefined) {
    let root: unknown;
    try {
      root = JSON.parse(fs.readFileSync(opts.fromJson, 'utf8'));
    } catch (e) {
      throw new HqError(
        'HQ_INVALID_ARGUMENT',
        `Cannot read --from-json file ${opts.fromJson}: ${String(e)}`,
      );
    }
    if (!Array.isArray(root)) {
      throw new HqError(
        'HQ_INVALID_ARGUMENT',
        'The top element of the provided JSON file has to be an array',
      );
    }
    // Compact JSON with object keys sorted, as upstream's serde_json writes the entries.
    return root.map((item) => JSON.stringify(sortKeys(item)));
  }
  return null;
}

/** Task ids and entries; `autoIds` leaves the numbering to the server (from 0, or after an open job's tasks). */
function idsAndEntries(opts: SubmitOpts): {
  ids: IdRange[];
  autoIds: boolean;
  entries: string[] | null;
} {
  const entries = readEntries(opts);
  const array = opts.array === undefined ? null : parseIdRanges(opts.array);
  if (array === null) {
    return { ids: [], autoIds: true, entries };
  }
  if (entries === null) {
    return { ids: array, autoIds: false, entries: null };
  }
  const ids: number[] = [];
  for (const r of array) {
    for (let i = 0; i < r.count; i++) {
      const id = r.start + i * r.step;
      if (id < entries.length) {
        ids.push(id);
      }
    }
  }
  ids.sort((x, y) => x - y);
  const unique = [...new Set(ids)];
  return {
    ids: unique.map((id) => ({ start: id, count: 1, step: 1 })),
    autoIds: false,
    entries: unique.map((id) => entries[id]!),
  };
}

function buildTaskDesc(opts: SubmitOpts, args: string[], stdin: Uint8Array | null): TaskDesc {
  const resources: ResourceRequestEntry[] = (opts.resource ?? []).map(parseResourceRequest);
  const seen = new Set<string>();
  for (const r of resources) {
    if (seen.has(r.resource)) {
      throw new HqError('HQ_INVALID_RESOURCE', `Resource '${r.resource}' defined more than once`);
    }
    seen.add(r.resource);
  }
  const hasCpuResource = resources.some((r) => r.resource === 'cpus');
  if (hasCpuResource && opts.cpus !== undefined) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      'Parameters --cpus and --resource cpus=... cannot be combined',
    );
  }
  const nodes = opts.nodes === undefined ? 0 : parseIntOption('--nodes <NODES>', opts.nodes);
  if (nodes > 0 && opts.cpus !== undefined) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      "the argument '--nodes <NODES>' cannot be used with '--cpus <CPUS>'",
    );
  }
  if (nodes === 0 && !hasCpuResource) {
    resources.unshift({ resource: 'cpus', request: parseAllocRequest(opts.cpus ?? '1') });
  }
  resources.sort((a, b) => (a.resource < b.resource ? -1 : a.resource > b.resource ? 1 : 0));
  const cwd = opts.cwd ?? '%{SUBMIT_DIR}';
  if (cwd.includes('%{CWD}')) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      'Working directory path cannot contain the working directory placeholder `%{CWD}`.',
    );
  }
  const pin = opts.pin;
  if (pin !== undefined && pin !== 'taskset' && pin !== 'omp') {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `invalid value '${pin}' for '--pin <PIN>': expected taskset or omp`,
    );
  }
  return {
    program: {
      args,
      env: parseEnv(opts.env),
      cwd,
      stdout:
        opts.stream !== undefined && opts.stdout === undefined
          ? { kind: 'pipe' }
          : parseStdio(opts.stdout, DEFAULT_STDOUT),
      stderr:
        opts.stream !== undefined && opts.stderr === undefined
          ? { kind: 'pipe' }
          : parseStdio(opts.stderr, DEFAULT_STDERR),
      stdin,
    },
    resources: [
      {
        nNodes: nodes,
        minTimeMs:
          opts.timeRequest === undefined
            ? 0
            : durationOption('--time-request <TIME_REQUEST>', opts.timeRequest),
        resources: nodes > 0 ? [] : resources,
        weight: opts.weight === undefined ? 10_000 : parseResourceWeight(opts.weight),
      },
    ],
    timeLimitMs:
      opts.timeLimit === undefined
        ? null
        : durationOption('--time-limit <TIME_LIMIT>', opts.timeLimit),
    priority:
      opts.priority === undefined
        ? 0
        : parseIntOption('--priority <PRIORITY>', opts.priority, -(2 ** 31), 2 ** 31 - 1),
    crashLimit: parseCrashLimit(opts.crashLimit),
    taskDir: opts.taskDir === true,
    pinMode: pin === undefined ? null : pin,
    streamPath: opts.stream ?? null,
  };
}

function warnings(opts: SubmitOpts, nTasks: number): void {
  const paths: [string | undefined, string][] = [
    [opts.stdout, 'stdout path'],
    [opts.stderr, 'stderr path'],
    [opts.stream, 'log path'],
    [opts.cwd, 'working directory path'],
  ];
  for (const [p, context] of paths) {
    if (p === undefined) {
      continue;
    }
    const unknown = unknownPlaceholders(p);
    if (unknown.length > 0) {
      log.warn(
        `Found unknown ${unknown.length === 1 ? 'placeholder' : 'placeholders'} \`${unknown.join(', ')}\` in ${context}`,
      );
    }
  }
  if (nTasks > 1) {
    for (const [value, stream] of [
      [opts.stdout, 'stdout'],
      [opts.stderr, 'stderr'],
    ] as const) {
      const stdio = value === undefined ? null : parseStdio(value, '');
      if (stdio === null || stdio.kind !== 'file' || stdio.path === '') {
        continue;
      }
      const joined = path.join(opts.cwd ?? '', stdio.path);
      if (!joined.includes('%{TASK_ID}')) {
        log.warn(
          `You have submitted an array job, but the \`${stream}\` path does not contain the task ID placeholder.\nIndividual tasks might thus overwrite the file. Consider adding \`%{TASK_ID}\` to the \`--${stream}\` value.`,
        );
      }
    }
    const outputs = [opts.stdout, opts.stderr].filter(
      (v) => v === undefined || v !== 'none',
    ).length;
    const files = outputs * nTasks;
    if (files > MANY_OUTPUT_FILES_WARNING && opts.stream === undefined) {
      const active = [
        ...(opts.stdout !== 'none' ? ['stdout'] : []),
        ...(opts.stderr !== 'none' ? ['stderr'] : []),
      ];
      log.warn(
        `The job will create ${files} files for ${active.join(' and ')}. Consider using the \`--stream\` option to stream all outputs into a single file`,
      );
    }
  }
}

async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function submit(
  cliArgs: string[],
  cliOpts: SubmitOpts,
  cmd: Command,
): Promise<number> {
  const ctx = makeContext(cmd);
  if (cliArgs.length === 0) {
    throw new HqError('HQ_INVALID_ARGUMENT', 'No command was given to submit');
  }
  let stdin: Uint8Array | null = null;
  if (cliOpts.stdin) {
    printLine('Reading data from stdin. In the interactive mode press Ctrl-D to submit.');
    stdin = await readStdin();
  }
  const { args, opts } = applyDirectives(cliArgs, withLogAlias(cliOpts), stdin);
  let jobId: number | null = null;
  if (opts.job !== undefined) {
    jobId = parseIntOption('--job <JOB>', opts.job);
    if (cliOpts.name !== undefined) {
      throw new HqError(
        'HQ_INVALID_ARGUMENT',
        'Parameter --name is not allowed when submitting to an open job.',
      );
    }
    if (cliOpts.maxFails !== undefined) {
      throw new HqError(
        'HQ_INVALID_ARGUMENT',
        'Parameter --max-fails is not allowed when submitting to an open job.',
      );
    }
  }
  const name = opts.name ?? path.basename(args[0]!);
  if (name.includes('\n') || name.includes('\t')) {
    throw new HqError('HQ_INVALID_ARGUMENT', 'The job name must not contain a newline or a tab');
  }
  const maxFails =
    opts.maxFails === undefined ? null : parseIntOption('--max-fails <MAX_FAILS>', opts.maxFails);
  const desc = buildTaskDesc(opts, args, stdin);
  const { ids, autoIds, entries } = idsAndEntries(opts);
  const nTasks = autoIds ? (entries === null ? 1 : entries.length) : idRangesCount(ids);
  if (nTasks === 0) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      'The job has no tasks: the array or the entries are empty',
    );
  }
  warnings(opts, nTasks);
  const array: ArraySubmit = { ids, autoIds, entries, taskDesc: desc, submitDir: process.cwd() };
  const session = await openSession(ctx.serverDir);
  try {
    const submitted = await session.call('submit', { jobId, name, maxFails, array });
    printJobSubmitted(ctx, submitted.jobId);
    const selector = { kind: 'ids' as const, ids: [{ start: submitted.jobId, count: 1, step: 1 }] };
    if (opts.progress) {
      const { waitWithProgress } = await import('./progress.js');
      await waitWithProgress(session, ctx, selector);
    } else if (opts.wait) {
      const runner = opts.onNotify === undefined ? null : new NotifyRunner(opts.onNotify);
      await session.call(
        'wait-jobs',
        { selector, withoutClose: false, notify: runner !== null },
        runner === null ? null : (n) => runner.push(n),
      );
      await runner?.drain();
    }
  } finally {
    session.close();
  }
  return 0;
}

/** Runs the `--on-notify` program for each notification, one after another. */
class NotifyRunner {
  private chain: Promise<void> = Promise.resolve();
  private readonly argv: string[];

  constructor(command: string) {
    this.argv = splitShellWords(command);
    if (this.argv.length === 0) {
      throw new HqError('HQ_INVALID_ARGUMENT', 'The --on-notify command is empty');
    }
  }

  push(n: TaskNotification): void {
    this.chain = this.chain.then(
      () =>
        new Promise<void>((resolve) => {
          const child = spawn(this.argv[0]!, [...this.argv.slice(1), n.message], {
            stdio: 'inherit',
            env: {
              ...process.env,
              HQ_JOB_ID: String(n.jobId),
              HQ_TASK_ID: String(n.taskId),
              HQ_WORKER_ID: String(n.workerId),
            },
          });
          child.once('error', (e) => {
            log.warn(`Failed to run on_notify callback: ${e.message}`);
            resolve();
          });
          child.once('exit', (code) => {
            if (code !== 0) {
              log.warn(`on_notify callback finished with exit code: ${code ?? -1}`);
            }
            resolve();
          });
        }),
    );
  }

  drain(): Promise<void> {
    return this.chain;
  }
}

/** `--log <PATH>` (hidden, the seeds' spelling) is `--stream <PATH>`. */
function withLogAlias(opts: SubmitOpts): SubmitOpts {
  if (opts.log === undefined) {
    return opts;
  }
  if (opts.stream !== undefined) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      "the argument '--log <LOG>' cannot be used with '--stream <STREAM>'",
    );
  }
  const { log: stream, ...rest } = opts;
  return { ...rest, stream };
}

/**
 * A bare `--pin` (the seeds' `hq submit --pin --cpus=4 ...`) means `--pin taskset`: a `--pin`
 * not followed by `taskset` or `omp` becomes `--pin=taskset`. The words are walked as commander
 * walks them, so an option's value or anything after the program is left alone.
 */
export function expandBarePin(args: readonly string[], cmd: Command): string[] {
  const out = [...args];
  for (let i = 0; i < out.length; i++) {
    const arg = out[i]!;
    if (arg === '--' || !arg.startsWith('-') || arg === '-') {
      break;
    }
    if (arg === '--pin') {
      const next = out[i + 1];
      if (next === 'taskset' || next === 'omp') {
        i++;
      } else {
        out[i] = '--pin=taskset';
      }
      continue;
    }
    const option = cmd.options.find((o) => o.long === arg || o.short === arg);
    const next = out[i + 1];
    if (
      option !== undefined &&
      (option.required || (option.optional && next !== undefined && !next.startsWith('-')))
    ) {
      i++;
    }
  }
  return out;
}

/** The flags that describe tasks; `#HQ` directives accept exactly these. */
function addTaskOptions(cmd: Command): Command {
  const parseOptions = cmd.parseOptions.bind(cmd);
  cmd.parseOptions = (args) => parseOptions(expandBarePin(args, cmd));
  return cmd
    .option('--name <NAME>', 'Name of the job')
    .option('--max-fails <MAX_FAILS>', 'Maximal number of failed tasks before the rest is aborted')
    .option('--nodes <NODES>', 'Number of nodes; 0 = a single-node task')
    .option('--cpus <CPUS>', 'Number and placement of CPUs for each task')
    .option(
      '--resource <RESOURCE>',
      'Generic resource request in the form <NAME>=<AMOUNT>',
      collect,
    )
    .option('--time-request <TIME_REQUEST>', 'Minimal lifetime of a worker needed to start a task')
    .option('--weight <WEIGHT>', 'Resource weight')
    .option('--pin <PIN>', 'Pin the task to its CPUs (taskset or omp)')
    .option('--cwd <CWD>', 'Working directory of each task')
    .option('--stdout <STDOUT>', 'Path where the standard output of each task is stored')
    .option('--stderr <STDERR>', 'Path where the standard error of each task is stored')
    .option('--env <ENV>', 'Environment variable KEY=VALUE for the tasks', collect)
    .addOption(
      new Option('--each-line <EACH_LINE>', 'Create a task for each line of the file').conflicts(
        'fromJson',
      ),
    )
    .option('--from-json <FROM_JSON>', 'Create a task for each item of a JSON array')
    .option('--array <ARRAY>', 'Create a task array, e.g. 1-10')
    .option('--priority <PRIORITY>', 'Priority of the tasks (higher runs first)')
    .option('--time-limit <TIME_LIMIT>', 'Time limit of each task')
    .option('--stream <STREAM>', 'Stream the output of tasks into this directory')
    .addOption(new Option('--log <LOG>').hideHelp())
    .option('--task-dir', 'Create a temporary directory for each task')
    .option(
      '--crash-limit <CRASH_LIMIT>',
      'How many worker losses a task survives (or never-restart, unlimited)',
    );
}

const ARRAY_KEYS = ['array', 'eachLine', 'fromJson'] as const;

/** Merges `#HQ` directive options under the command line's: the command line wins. */
function mergeDirectives(cli: SubmitOpts, directives: SubmitOpts): SubmitOpts {
  const merged: SubmitOpts = { ...cli };
  const cliHasArray = ARRAY_KEYS.some((k) => cli[k] !== undefined);
  for (const [key, value] of Object.entries(directives) as [keyof SubmitOpts, unknown][]) {
    if (value === undefined) {
      continue;
    }
    if (key === 'env' || key === 'resource') {
      merged[key] = [...(directives[key] ?? []), ...(cli[key] ?? [])];
    } else if (key === 'taskDir') {
      merged.taskDir = cli.taskDir === true || directives.taskDir === true;
    } else if ((ARRAY_KEYS as readonly string[]).includes(key)) {
      if (!cliHasArray) {
        (merged as Record<string, unknown>)[key] = value;
      }
    } else if (cli[key] === undefined) {
      (merged as Record<string, unknown>)[key] = value;
    }
  }
  return merged;
}

function parseDirectiveArgs(args: string[]): SubmitOpts {
  const cmd = addTaskOptions(new Command('#HQ'))
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: () => undefined })
    .allowExcessArguments(false);
  try {
    cmd.parse(args, { from: 'user' });
  } catch (e) {
    const detail = clapStyle(e instanceof Error ? e.message : String(e));
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `You have used invalid parameter(s) after a #HQ directive. ${detail}`,
    );
  }
  return withLogAlias(cmd.opts<SubmitOpts>());
}

/** Applies `--directives`: reads `#HQ` lines and the shebang of the script being submitted. */
export function applyDirectives(
  args: string[],
  opts: SubmitOpts,
  stdin: Uint8Array | null,
): { args: string[]; opts: SubmitOpts } {
  const mode = opts.directives ?? 'auto';
  const script = args[0]!;
  let meta: ScriptMetadata | null = null;
  if ((mode === 'auto' && script.endsWith('.sh')) || mode === 'file') {
    meta = readDirectivesFile(script);
  } else if (mode === 'stdin') {
    if (stdin === null) {
      throw new HqError(
        'HQ_INVALID_ARGUMENT',
        'You have to use `--stdin` when you specify `--directives=stdin`',
      );
    }
    meta = parseDirectives(Buffer.from(stdin).toString('utf8'));
  }
  if (meta === null) {
    return { args, opts };
  }
  const withShebang = meta.shebang !== null && stdin === null ? [...meta.shebang, ...args] : args;
  const merged = meta.args.length > 0 ? mergeDirectives(opts, parseDirectiveArgs(meta.args)) : opts;
  return { args: withShebang, opts: merged };
}

/** Adds the submit flags and the trailing command to `cmd`. */
export function defineSubmit(cmd: Command, run: (f: () => Promise<number>) => void): Command {
  return addTaskOptions(
    withGlobals(cmd)
      .description('Submit a job to HyperQueue')
      .argument('<COMMANDS...>', 'Command that should be executed by each task')
      .passThroughOptions(),
  )
    .option('--job <JOB>', 'Attach the tasks to an open job')
    .addOption(new Option('--wait', 'Wait for the job to finish').conflicts('progress'))
    .option('--progress', 'Show a progress bar while waiting')
    .option('--on-notify <ON_NOTIFY>', 'Program run for every notification of a task')
    .option('--stdin', 'Give the standard input of this command to every task')
    .addOption(
      new Option('--directives <DIRECTIVES>', 'Parse #HQ directives')
        .choices(['auto', 'file', 'stdin', 'off'])
        .default('auto'),
    )
    .action((args: string[], opts: SubmitOpts, c: Command) => run(() => submit(args, opts, c)));
}

/** `hq alloc ...`: automatic allocation queues (PBS/Slurm). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { formatDuration } from '../common/duration.js';
import { HqError, errorMessage } from '../common/errors.js';
import { logger } from '../common/log.js';
import {
  buildDescriptor,
  parseCpuDefinition,
  parseResourceDefinition,
  type ResourceDescriptor,
  type ResourceDescriptorItem,
} from '../common/resources.js';
import type { AllocManager, AllocationStatus, QueueParams } from '../transport/messages.js';
import { collect, durationOption, parseIntOption, withGlobals, withSession } from './context.js';
import { printJson, writeOut } from './output.js';
import { printAllocations, printQueues } from './render.js';

const log = logger('hq::client');
const LONG_IDLE_TIMEOUT_MS = 10 * 60_000;

interface QueueOpts {
  backlog: string;
  timeLimit?: string;
  /** `--timelimit`: the seeds' spelling of `--time-limit`. */
  timelimit?: string;
  /** `--partition` (Slurm) / `--queue` (PBS): the seeds' shorthand for the sbatch/qsub flag. */
  partition?: string;
  queue?: string;
  maxWorkersPerAlloc: string;
  maxWorkerCount?: string;
  name?: string;
  cpus?: string;
  resource?: string[];
  group?: string;
  coupling?: string;
  detectResources?: string;
  hyperThreading?: boolean;
  idleTimeout?: string;
  overviewInterval?: string;
  minUtilization: string;
  onServerLost: string;
  dryRun: boolean;
  workerStartCmd?: string;
  workerStopCmd?: string;
  workerWrapCmd?: string;
  workerTimeLimit?: string;
}

function parseBacklog(text: string): number {
  const n = parseIntOption('--backlog <BACKLOG>', text);
  if (n === 0) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `invalid value '${text}' for '--backlog <BACKLOG>': Backlog has to be at least 1`,
    );
  }
  return n;
}

/** The worker shape the flags describe, or null when they say nothing (or nothing valid). */
function cliResources(cpus: ResourceDescriptorItem | null, items: ResourceDescriptorItem[]) {
  if (cpus === null && items.length === 0) {
    return null;
  }
  const all = [...items];
  if (cpus !== null && !all.some((i) => i.name === 'cpus')) {
    all.push(cpus);
  }
  try {
    return buildDescriptor(all, { needsCpus: true });
  } catch {
    return null;
  }
}

const TIME_LIMIT_FLAG = '-t, --time-limit <TIME_LIMIT>';

/**
 * The seeds' shorthand `--partition <P>` (Slurm) or `--queue <Q>` (PBS) as the sbatch/qsub
 * argument it stands for, before the arguments given after `--`; null when it is not used.
 */
function targetArgs(manager: AllocManager, o: QueueOpts): string[] | null {
  if (manager === 'slurm' && o.partition !== undefined) {
    return [`--partition=${o.partition}`];
  }
  if (manager === 'pbs' && o.queue !== undefined) {
    return ['-q', o.queue];
  }
  return null;
}

/**
 * The queue's walltime. Upstream's forms require `--time-limit` (or `--timelimit`); a queue
 * named with `--partition`/`--queue` may leave it out, and then its allocations get the batch
 * system's default walltime and their workers read their time limit from the batch system.
 */
function queueTimeLimitMs(o: QueueOpts, hasTarget: boolean, cmd: Command): number | null {
  if (o.timeLimit !== undefined && o.timelimit !== undefined) {
    cmd.error(
      "error: the argument '--timelimit <TIME_LIMIT>' cannot be used with '--time-limit <TIME_LIMIT>'",
    );
  }
  const text = o.timeLimit ?? o.timelimit;
  if (text === undefined) {
    if (!hasTarget) {
      cmd.error(`error: required option '${TIME_LIMIT_FLAG}' not specified`, {
        code: 'commander.missingMandatoryOptionValue',
      });
    }
    return null;
  }
  return durationOption('--time-limit <TIME_LIMIT>', text);
}

/** Turns the flags into queue parameters; the worker arguments are quoted for the shell. */
export function queueParams(
  manager: AllocManager,
  o: QueueOpts,
  extraArgs: string[],
  timeLimitMs: number | null,
): QueueParams {
  const additionalArgs = [...(targetArgs(manager, o) ?? []), ...extraArgs];
  const workerTimeLimitMs =
    o.workerTimeLimit === undefined
      ? null
      : durationOption('--worker-time-limit <WORKER_TIME_LIMIT>', o.workerTimeLimit);
  if (workerTimeLimitMs !== null && timeLimitMs !== null && workerTimeLimitMs > timeLimitMs) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      'Worker time limit cannot be larger than queue time limit',
    );
  }
  const idleTimeoutMs =
    o.idleTimeout === undefined
      ? null
      : durationOption('--idle-timeout <IDLE_TIMEOUT>', o.idleTimeout);
  const minUtilization = Number(o.minUtilization);
  if (!(minUtilization >= 0 && minUtilization <= 1)) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `invalid value '${o.minUtilization}' for '--min-utilization <MIN_UTILIZATION>': expected 0.0 to 1.0`,
    );
  }
  if (o.overviewInterval !== undefined) {
    durationOption('--overview-interval <OVERVIEW_INTERVAL>', o.overviewInterval, true);
  }
  const cpus = o.cpus === undefined ? null : { name: 'cpus', ...parseCpuDefinition(o.cpus) };
  const items = (o.resource ?? []).map(parseResourceDefinition);
  const resources: ResourceDescriptor | null = cliResources(cpus, items);

  const workerArgs: string[] = [];
  if (o.cpus !== undefined) {
    workerArgs.push('--cpus', `"${o.cpus}"`);
  }
  for (const r of o.resource ?? []) {
    workerArgs.push('--resource', `"${r}"`);
  }
  if (o.coupling !== undefined) {
    workerArgs.push('--coupling', `"${o.coupling}"`);
  }
  if (o.group !== undefined) {
    workerArgs.push('--group', o.group);
  }
  if (o.hyperThreading === false) {
    workerArgs.push('--no-hyper-threading');
  }
  if (o.detectResources !== undefined) {
    workerArgs.push('--detect-resources', o.detectResources);
  }
  if (o.overviewInterval !== undefined) {
    workerArgs.push('--overview-interval', `"${o.overviewInterval}"`);
  }
  if (minUtilization > 0) {
    workerArgs.push('--min-utilization', String(minUtilization));
  }
  workerArgs.push('--on-server-lost', `"${o.onServerLost}"`);
  const workerTimeLimit = workerTimeLimitMs ?? timeLimitMs;
  if (workerTimeLimit !== null) {
    workerArgs.push('--time-limit', `"${formatDuration(workerTimeLimit)}"`);
  }

  const backlog = parseBacklog(o.backlog);
  const maxWorkersPerAlloc = parseIntOption(
    '--max-workers-per-alloc <MAX_WORKERS_PER_ALLOC>',
    o.maxWorkersPerAlloc,
    1,
  );
  const maxWorkerCount =
    o.maxWorkerCount === undefined
      ? null
      : parseIntOption('--max-worker-count <MAX_WORKER_COUNT>', o.maxWorkerCount);
  // Warned only once every flag is known to be valid: a refused command says one thing.
  if (idleTimeoutMs !== null && idleTimeoutMs > LONG_IDLE_TIMEOUT_MS) {
    log.warn(
      'You have set an idle timeout longer than 10 minutes. This can result in wasted allocation duration.',
    );
  }
  if (cpus === null && items.length === 0) {
    log.warn(
      'No worker resources were provided for this queue. Before the first worker connects from an allocation submitted by this queue, the queue will operate in probing mode.',
    );
  }
  return {
    manager,
    name: o.name ?? null,
    backlog,
    maxWorkersPerAlloc,
    maxWorkerCount,
    timeLimitMs,
    minUtilization,
    additionalArgs,
    workerArgs,
    idleTimeoutMs,
    workerStartCmd: o.workerStartCmd ?? null,
    workerStopCmd: o.workerStopCmd ?? null,
    workerWrapCmd: o.workerWrapCmd ?? null,
    cliResources: resources,
  };
}

/** `pbs` and `slurm` subcommands of `add` and `dry-run`, with the queue flags. */
function queueCommand(
  name: AllocManager,
  description: string,
  action: (o: QueueOpts, args: string[], timeLimitMs: number | null, cmd: Command) => void,
): Command {
  const target =
    name === 'slurm'
      ? new Option('--partition <PARTITION>', 'Slurm partition (sbatch --partition)')
      : new Option('--queue <QUEUE>', 'PBS queue (qsub -q)');
  return withGlobals(new Command(name))
    .description(description)
    .option('-b, --backlog <BACKLOG>', 'How many allocations can wait in the queue at once', '1')
    .option(TIME_LIMIT_FLAG, 'Walltime of the allocations')
    .addOption(new Option('--timelimit <TIME_LIMIT>').hideHelp())
    .addOption(target.hideHelp())
    .option(
      '-m, --max-workers-per-alloc <MAX_WORKERS_PER_ALLOC>',
      'Workers (nodes) in one allocation at most',
      '1',
    )
    .option('--max-worker-count <MAX_WORKER_COUNT>', 'Workers queued or running at most')
    .option('-n, --name <NAME>', 'Name of the queue')
    .option('--cpus <CPUS>', 'CPUs of each worker')
    .option('--resource <RESOURCE>', 'Resources of each worker', collect)
    .option('--group <GROUP>', 'Worker group')
    .option('--coupling <COUPLING>', 'Resource coupling of each worker')
    .option('--detect-resources <DETECT_RESOURCES>', 'Resources the workers detect')
    .option('--no-hyper-threading', 'Workers ignore hyper-threading')
    .option('--idle-timeout <IDLE_TIMEOUT>', 'Idle timeout of the workers (default 5m)')
    .option('--overview-interval <OVERVIEW_INTERVAL>', 'Hardware overview interval of the workers')
    .option('--min-utilization <MIN_UTILIZATION>', 'Minimal CPU utilization of the workers', '0')
    .addOption(
      new Option('--on-server-lost <ON_SERVER_LOST>', 'What workers do when the server is lost')
        .choices(['stop', 'finish-running'])
        .default('finish-running'),
    )
    .option('--no-dry-run', 'Do not submit a test allocation first')
    .option('--worker-start-cmd <WORKER_START_CMD>', 'Shell command run before each worker')
    .option('--worker-stop-cmd <WORKER_STOP_CMD>', 'Shell command run after each worker')
    .option('--worker-wrap-cmd <WORKER_WRAP_CMD>', 'Command the worker command is wrapped in')
    .option('--worker-time-limit <WORKER_TIME_LIMIT>', 'Time limit of the workers')
    .argument('[ADDITIONAL_ARGS...]', 'Further arguments for qsub/sbatch')
    .action((args: string[], o: QueueOpts, cmd: Command) =>
      action(o, args, queueTimeLimitMs(o, targetArgs(name, o) !== null, cmd), cmd),
    );
}

function queueIdArgument(text: string): number {
  return parseIntOption('<QUEUE_ID>', text);
}

const TRIAL_SUCCEEDED =
  'A trial allocation was submitted successfully. It was immediately canceled to avoid wasting resources.';

/** `alloc add` (with its optional dry run) and `alloc dry-run`. */
async function submitQueue(
  op: 'alloc-add' | 'alloc-dry-run',
  manager: AllocManager,
  o: QueueOpts,
  args: string[],
  timeLimitMs: number | null,
  cmd: Command,
): Promise<number> {
  const params = queueParams(manager, o, args, timeLimitMs);
  const dryRun = op === 'alloc-dry-run' || o.dryRun;
  return withSession(cmd, async (session, ctx) => {
    let queueId: number | null = null;
    try {
      if (op === 'alloc-add') {
        ({ queueId } = await session.call('alloc-add', { params, dryRun }));
      } else {
        await session.call('alloc-dry-run', { params });
      }
    } catch (e) {
      if (
        op === 'alloc-add' &&
        dryRun &&
        /^Could not (submit|cancel) allocation/.test(errorMessage(e))
      ) {
        log.error('Dry-run (test allocation submission) has failed');
      }
      throw e;
    }
    if (dryRun) {
      log.info(TRIAL_SUCCEEDED);
    }
    if (queueId !== null) {
      log.info(`Allocation queue ${queueId} successfully created`);
    }
    if (ctx.mode === 'json') {
      printJson({});
    }
    return 0;
  });
}

const FILTERS: AllocationStatus[] = ['queued', 'running', 'finished', 'failed'];

export function allocCommand(run: (f: () => Promise<number> | number) => void): Command {
  const alloc = withGlobals(new Command('alloc')).description(
    'Commands for automatic allocation (PBS/Slurm)',
  );
  alloc.addCommand(
    withGlobals(new Command('list'))
      .description('Display allocation queues')
      .action((_o: unknown, cmd: Command) =>
        run(() =>
          withSession(cmd, async (session, ctx) => {
            printQueues(ctx, await session.call('alloc-list', {}));
            return 0;
          }),
        ),
      ),
  );
  alloc.addCommand(
    withGlobals(new Command('info'))
      .description('Display allocations of an allocation queue')
      .argument('<QUEUE_ID>', 'ID of the allocation queue')
      .addOption(
        new Option('--filter <FILTER>', 'Display only allocations in this state').choices(FILTERS),
      )
      .action((queue: string, o: { filter?: AllocationStatus }, cmd: Command) =>
        run(() =>
          withSession(cmd, async (session, ctx) => {
            const all = await session.call('alloc-info', { queueId: queueIdArgument(queue) });
            printAllocations(
              ctx,
              o.filter === undefined ? all : all.filter((a) => a.status === o.filter),
            );
            return 0;
          }),
        ),
      ),
  );
  alloc.addCommand(
    withGlobals(new Command('log'))
      .description('Display the stdout or stderr of an allocation')
      .argument('<ALLOCATION_ID>', 'Allocation ID')
      .argument('<CHANNEL>', 'stdout or stderr')
      .action((allocationId: string, channel: string, _o: unknown, cmd: Command) =>
        run(() => allocationLog(allocationId, channel, cmd)),
      ),
  );
  const add = withGlobals(new Command('add')).description('Add a new allocation queue');
  const dry = withGlobals(new Command('dry-run')).description(
    'Try to submit an allocation to test allocation parameters',
  );
  for (const manager of ['pbs', 'slurm'] as const) {
    const label = manager === 'pbs' ? 'PBS' : 'SLURM';
    add.addCommand(
      queueCommand(manager, `Create a ${label} allocation queue`, (o, args, limit, cmd) =>
        run(() => submitQueue('alloc-add', manager, o, args, limit, cmd)),
      ),
    );
    dry.addCommand(
      queueCommand(manager, `Try to create a ${label} allocation`, (o, args, limit, cmd) =>
        run(() => submitQueue('alloc-dry-run', manager, o, args, limit, cmd)),
      ),
    );
  }
  alloc.addCommand(add);
  alloc.addCommand(dry);
  alloc.addCommand(
    withGlobals(new Command('remove'))
      .description('Remove an allocation queue')
      .argument('<QUEUE_ID>', 'ID of the allocation queue')
      .option('--force', 'Remove the queue even if it has running allocations (they are cancelled)')
      .action((queue: string, o: { force?: boolean }, cmd: Command) =>
        run(() =>
          withSession(cmd, async (session, ctx) => {
            const queueId = queueIdArgument(queue);
            await session.call('alloc-remove', { queueId, force: o.force === true });
            log.info(`Allocation queue ${queueId} successfully removed`);
            if (ctx.mode === 'json') {
              printJson({});
            }
            return 0;
          }),
        ),
      ),
  );
  for (const [verb, op] of [
    ['pause', 'alloc-pause'],
    ['resume', 'alloc-resume'],
  ] as const) {
    alloc.addCommand(
      withGlobals(new Command(verb))
        .description(
          verb === 'pause'
            ? 'Pause an allocation queue: it submits no new allocations'
            : 'Resume a paused allocation queue',
        )
        .argument('<QUEUE_ID>', 'ID of the allocation queue')
        .action((queue: string, _o: unknown, cmd: Command) =>
          run(() =>
            withSession(cmd, async (session, ctx) => {
              const queueId = queueIdArgument(queue);
              await session.call(op, { queueId });
              log.info(`Allocation queue ${queueId} successfully ${verb}d`);
              if (ctx.mode === 'json') {
                printJson({});
              }
              return 0;
            }),
          ),
        ),
    );
  }
  return alloc;
}

async function allocationLog(allocationId: string, channel: string, cmd: Command): Promise<number> {
  if (channel !== 'stdout' && channel !== 'stderr') {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `invalid value '${channel}' for '<CHANNEL>': expected stdout or stderr`,
    );
  }
  return withSession(cmd, async (session, ctx) => {
    if (ctx.mode === 'json') {
      throw new HqError(
        'HQ_INVALID_ARGUMENT',
        "JSON output mode doesn't support allocation output",
      );
    }
    const allocation = await session.call('alloc-allocation', { allocationId });
    if (ctx.mode === 'quiet') {
      return 0;
    }
    const file = path.join(allocation.workdir, channel);
    log.info(`Outputting allocation path at ${file}`);
    try {
      writeOut(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new HqError('HQ_NOT_FOUND', `Cannot read ${file}: ${errorMessage(e)}`);
    }
    return 0;
  });
}

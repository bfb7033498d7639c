/** `hq worker ...` */
import { execFileSync } from 'node:child_process';
import type * as HwDetect from '../worker/hwdetect.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { HqError, errorMessage } from '../common/errors.js';
import { parseIdSelector } from '../common/id-set.js';
import { logger } from '../common/log.js';
import {
  buildDescriptor,
  parseCpuDefinition,
  parseResourceDefinition,
  resourcesFullDescribe,
  resourcesSummary,
  descriptorToJson,
  type ResourceDescriptorItem,
} from '../common/resources.js';
import type { ManagerKind, ServerLostPolicy, WorkerInfo } from '../transport/messages.js';
import {
  collect,
  durationOption,
  makeContext,
  parseIntOption,
  withGlobals,
  withSession,
} from './context.js';
import { printJson, printLine } from './output.js';
import { printWorkerInfo, printWorkerList, workerStateText } from './render.js';

const log = logger('hq::client');
const WORKER_WAIT_POLL_MS = 1000;

interface StartOpts {
  cpus?: string;
  resource?: string[];
  group?: string;
  coupling?: string;
  detectResources: string;
  hyperThreading?: boolean;
  idleTimeout?: string;
  overviewInterval?: string;
  minUtilization: string;
  heartbeat: string;
  timeLimit?: string;
  manager: string;
  hostname?: string;
  onServerLost: string;
  workDir?: string;
  retractCheckInterval?: string;
  zeroWorker?: boolean;
}

function detectManager(choice: string): { kind: ManagerKind; jobId: string } | null {
  const pbs = process.env['PBS_JOBID'];
  const slurm = process.env['SLURM_JOB_ID'] ?? process.env['SLURM_JOBID'];
  switch (choice) {
    case 'none':
      return null;
    case 'pbs':
      if (pbs === undefined) {
        throw new HqError(
          'HQ_INVALID_ARGUMENT',
          'PBS_JOBID is not set: this worker is not inside a PBS job',
        );
      }
      return { kind: 'PBS', jobId: pbs };
    case 'slurm':
      if (slurm === undefined) {
        throw new HqError(
          'HQ_INVALID_ARGUMENT',
          'SLURM_JOB_ID is not set: this worker is not inside a Slurm job',
        );
      }
      return { kind: 'SLURM', jobId: slurm };
    default:
      if (pbs !== undefined && process.env['PBS_ENVIRONMENT'] !== undefined) {
        return { kind: 'PBS', jobId: pbs };
      }
      if (slurm !== undefined) {
        return { kind: 'SLURM', jobId: slurm };
      }
      return null;
  }
}

/** The remaining walltime of the batch job the worker runs in (null: unknown). */
function managerRemainingMs(
  manager: { kind: ManagerKind; jobId: string },
  hw: typeof HwDetect,
): number | null {
  try {
    if (manager.kind === 'PBS') {
      const out = execFileSync('qstat', ['-f', manager.jobId, '-F', 'json'], {
        encoding: 'utf8',
        timeout: 10_000,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      return hw.pbsRemainingMs(out, manager.jobId);
    }
    const out = execFileSync('scontrol', ['show', 'job', manager.jobId], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return hw.slurmRemainingMs(out);
  } catch (e) {
    log.warn(
      `Cannot get the remaining time of the ${manager.kind} job ${manager.jobId}: ${errorMessage(e)}`,
    );
    return null;
  }
}

async function workerStart(opts: StartOpts, cmd: Command): Promise<number> {
  const ctx = makeContext(cmd);
  const hw = await import('../worker/hwdetect.js');
  const items: ResourceDescriptorItem[] = (opts.resource ?? []).map(parseResourceDefinition);
  const components = hw.parseDetectResources(opts.detectResources);
  if (!items.some((i) => i.name === 'cpus')) {
    if (opts.cpus !== undefined) {
      items.push({ name: 'cpus', ...parseCpuDefinition(opts.cpus) });
    } else if (components.has('cpus')) {
      items.push({ name: 'cpus', ...hw.detectCpus() });
    } else {
      throw new HqError(
        'HQ_INVALID_ARGUMENT',
        'You have to specify --cpus explicitly when opting out of CPU automatic detection',
      );
    }
  } else if (opts.cpus !== undefined) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      'Parameters --cpus and --resource cpus=... cannot be combined',
    );
  }
  if (opts.hyperThreading === false) {
    const cpus = items.find((i) => i.name === 'cpus')!;
    Object.assign(cpus, hw.pruneHyperThreading(cpus));
  }
  const manager = detectManager(opts.manager);
  // An explicit --time-limit wins, so the batch system need not be asked.
  const managerTimeLimitMs =
    manager === null || opts.timeLimit !== undefined ? null : managerRemainingMs(manager, hw);
  items.push(...hw.detectAdditional(components, new Set(items.map((i) => i.name))));
  const descriptor = buildDescriptor(items, {
    needsCpus: true,
    ...(opts.coupling === undefined ? {} : { coupling: opts.coupling }),
  });
  const minUtilization = Number(opts.minUtilization);
  if (!(minUtilization >= 0 && minUtilization <= 1)) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `Invalid value '${opts.minUtilization}' for --min-utilization: expected 0.0 to 1.0`,
    );
  }
  const workDir = path.resolve(
    opts.workDir ?? path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hq-worker')), 'work'),
  );
  const overview =
    opts.overviewInterval === undefined
      ? null
      : durationOption('--overview-interval <OVERVIEW_INTERVAL>', opts.overviewInterval, true);
  const { Worker } = await import('../worker/worker.js');
  const worker = new Worker({
    serverDir: ctx.serverDir,
    resources: descriptor,
    hostname: opts.hostname ?? os.hostname(),
    workDir,
    group: opts.group ?? manager?.jobId ?? 'default',
    onServerLost: opts.onServerLost as ServerLostPolicy,
    heartbeatMs: durationOption('--heartbeat <HEARTBEAT>', opts.heartbeat),
    idleTimeoutMs:
      opts.idleTimeout === undefined
        ? null
        : durationOption('--idle-timeout <IDLE_TIMEOUT>', opts.idleTimeout),
    timeLimitMs:
      opts.timeLimit === undefined
        ? managerTimeLimitMs
        : durationOption('--time-limit <TIME_LIMIT>', opts.timeLimit),
    minUtilization,
    overviewIntervalMs: overview === 0 ? null : overview,
    manager,
    zeroWorker: opts.zeroWorker === true || process.env['HQ_ZERO_WORKER'] === '1',
    onRegistered: (id, configuration, startedAt) => {
      const info: WorkerInfo = {
        id,
        configuration,
        startedAt,
        ended: null,
        runningTasks: 0,
        assignedTasks: 0,
        lastTaskStarted: null,
        multiNode: null,
      };
      if (ctx.mode === 'json') {
        printWorkerInfo(ctx, [info]);
      } else if (ctx.mode === 'cli') {
        log.info(`Worker ${id} registered (${resourcesSummary(descriptor, false)})`);
      }
    },
  });
  return worker.run();
}

async function workerList(opts: { all?: boolean; filter?: string }, cmd: Command): Promise<number> {
  return withSession(cmd, async (session, ctx) => {
    let workers = await session.call('worker-list', {});
    if (opts.filter === 'running') {
      workers = workers.filter((w) => w.ended === null);
    } else if (opts.filter === 'offline') {
      workers = workers.filter((w) => w.ended !== null);
    } else if (!opts.all) {
      workers = workers.filter((w) => w.ended === null);
    }
    workers.sort((a, b) => a.id - b.id);
    printWorkerList(ctx, workers);
    return 0;
  });
}

async function workerInfo(selectorText: string, cmd: Command): Promise<number> {
  const selector = parseIdSelector(selectorText, { all: true, last: true });
  return withSession(cmd, async (session, ctx) => {
    const { workers, missing } = await session.call('worker-info', { selector });
    for (const id of missing) {
      log.error(`Worker ${id} not found`);
    }
    printWorkerInfo(ctx, workers);
    return 0;
  });
}

async function workerStop(selectorText: string, cmd: Command): Promise<number> {
  const selector = parseIdSelector(selectorText, { all: true, last: true });
  return withSession(cmd, async (session, ctx) => {
    const { results } = await session.call('worker-stop', { selector });
    results.sort((a, b) => a.workerId - b.workerId);
    for (const r of results) {
      if (r.result === 'not-found') {
        log.error(`Stopping worker ${r.workerId} failed; worker not found`);
      } else if (r.result === 'already-stopped') {
        log.warn(`Stopping worker ${r.workerId} failed; worker is already stopped`);
      } else {
        log.info(`Worker ${r.workerId} stopped`);
      }
    }
    if (ctx.mode === 'json') {
      printJson({});
    }
    return 0;
  });
}

async function workerAddress(idText: string, cmd: Command): Promise<number> {
  const id = parseIntOption('WORKER_ID', idText, 0);
  return withSession(cmd, async (session, ctx) => {
    const { workers } = await session.call('worker-info', {
      selector: { kind: 'ids', ids: [{ start: id, count: 1, step: 1 }] },
    });
    const w = workers[0];
    if (w === undefined) {
      throw new HqError('HQ_NOT_FOUND', `Worker ${id} not found`);
    }
    if (ctx.mode === 'json') {
      printJson(w.configuration.hostname);
    } else {
      printLine(w.configuration.hostname);
    }
    return 0;
  });
}

async function workerWait(countText: string, cmd: Command): Promise<number> {
  const count = parseIntOption('COUNT', countText, 0);
  return withSession(cmd, async (session, ctx) => {
    for (;;) {
      const workers = await session.call('worker-list', {});
      if (workers.filter((w) => w.ended === null).length >= count) {
        if (ctx.mode === 'json') {
          printJson({});
        }
        return 0;
      }
      await new Promise((r) => setTimeout(r, WORKER_WAIT_POLL_MS));
    }
  });
}

async function hwdetect(opts: { hyperThreading?: boolean }, cmd: Command): Promise<number> {
  const ctx = makeContext(cmd);
  const hw = await import('../worker/hwdetect.js');
  let cpus = hw.detectCpus();
  if (opts.hyperThreading === false) {
    cpus = hw.pruneHyperThreading(cpus);
  }
  const items: ResourceDescriptorItem[] = [{ name: 'cpus', ...cpus }];
  items.push(...hw.detectAdditional(hw.parseDetectResources('all'), new Set(['cpus'])));
  const descriptor = buildDescriptor(items, { needsCpus: true });
  if (ctx.mode === 'json') {
    printJson(descriptorToJson(descriptor));
  } else if (ctx.mode === 'cli') {
    printLine(`Summary:\n${resourcesSummary(descriptor, true)}`);
    printLine(`Full Description:\n${resourcesFullDescribe(descriptor)}`);
  }
  return 0;
}

export function workerCommand(run: (f: () => Promise<number> | number) => void): Command {
  const worker = withGlobals(new Command('worker')).description('Commands for managing workers');
  worker.addCommand(
    withGlobals(new Command('start'))
      .description('Start a worker')
      .option('--cpus <CPUS>', 'How many cores should be allocated for the worker')
      .option('--resource <RESOURCE>', 'Resources provided by the worker', collect)
      .option('--group <GROUP>', 'Worker group (default: the allocation id, or "default")')
      .option('--coupling <COUPLING>', 'Resource coupling')
      .option('--detect-resources <DETECT_RESOURCES>', 'Resources to detect automatically', 'all')
      .option('--no-hyper-threading', 'Ignore hyper-threading while detecting CPUs')
      .option('--idle-timeout <IDLE_TIMEOUT>', 'Stop the worker after it has been idle this long')
      .option('--overview-interval <OVERVIEW_INTERVAL>', 'How often to send hardware overviews')
      .option('--min-utilization <MIN_UTILIZATION>', 'Minimal CPU utilization to start tasks', '0')
      .option('--heartbeat <HEARTBEAT>', 'Heartbeat interval', '8s')
      .option('--time-limit <TIME_LIMIT>', 'Stop the worker after this time')
      .addOption(
        new Option('--manager <MANAGER>', 'Manager type')
          .choices(['detect', 'none', 'pbs', 'slurm'])
          .default('detect'),
      )
      .option('--hostname <HOSTNAME>', 'Overwrite the worker hostname')
      .addOption(
        new Option('--on-server-lost <ON_SERVER_LOST>', 'What to do when the server is lost')
          .choices(['stop', 'finish-running'])
          .default('stop'),
      )
      .option('--work-dir <WORK_DIR>', 'Working directory of the worker')
      .option('--retract-check-interval <INTERVAL>', 'Check interval for retracting tasks', '30s')
      // For benchmarks and tests only, hence hidden: tasks finish without being started.
      .addOption(
        new Option('--zero-worker', 'Finish every task at once without running it').hideHelp(),
      )
      .action((opts: StartOpts, cmd: Command) => run(() => workerStart(opts, cmd))),
  );
  worker.addCommand(
    withGlobals(new Command('list'))
      .description('Display information about workers')
      .option('--all', 'Display all workers, including offline ones')
      .addOption(
        new Option('--filter <FILTER>', 'Only workers in this state').choices([
          'running',
          'offline',
        ]),
      )
      .action((opts: { all?: boolean; filter?: string }, cmd: Command) =>
        run(() => workerList(opts, cmd)),
      ),
  );
  worker.addCommand(
    withGlobals(new Command('info'))
      .description('Display information about workers')
      .argument('<SELECTOR>')
      .action((sel: string, _o: unknown, cmd: Command) => run(() => workerInfo(sel, cmd))),
  );
  worker.addCommand(
    withGlobals(new Command('stop'))
      .description('Stop workers')
      .argument('<SELECTOR>')
      .action((sel: string, _o: unknown, cmd: Command) => run(() => workerStop(sel, cmd))),
  );
  worker.addCommand(
    withGlobals(new Command('address'))
      .description("Print a worker's hostname")
      .argument('<WORKER_ID>')
      .action((id: string, _o: unknown, cmd: Command) => run(() => workerAddress(id, cmd))),
  );
  worker.addCommand(
    withGlobals(new Command('wait'))
      .description('Wait until a number of workers is running')
      .argument('<COUNT>')
      .action((count: string, _o: unknown, cmd: Command) => run(() => workerWait(count, cmd))),
  );
  worker.addCommand(
    withGlobals(new Command('hwdetect'))
      .description('Show the hardware a worker would detect on this machine')
      .option('--no-hyper-threading', 'Ignore hyper-threading')
      .action((opts: { hyperThreading?: boolean }, cmd: Command) => run(() => hwdetect(opts, cmd))),
  );
  worker.addCommand(
    withGlobals(new Command('deploy-ssh'))
      .description('Start workers on the hosts of a host file through ssh')
      .option('--show-output', 'Show the output of the workers')
      .argument('<HOSTFILE>')
      .argument('[WORKER_START_ARGS...]')
      .passThroughOptions()
      .action((hostFile: string, args: string[], opts: { showOutput?: boolean }, cmd: Command) =>
        run(async () => {
          makeContext(cmd);
          const { deploySsh } = await import('./deploy-ssh.js');
          return deploySsh(hostFile, args, opts.showOutput === true);
        }),
      ),
  );
  return worker;
}

export { workerStateText };

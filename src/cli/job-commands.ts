/** `hq job ...` and `hq task ...` */
import { Command, Option } from 'commander';
import { HqError } from '../common/errors.js';
import { parseIdSelector, parseIdSet } from '../common/id-set.js';
import { logger } from '../common/log.js';
import { openSession, type ClientSession } from '../client/session.js';
import type { JobStatus } from '../transport/messages.js';
import { makeContext, withGlobals, type CommandContext } from './context.js';
import { printJson } from './output.js';
import {
  infoStatus,
  printJobDetails,
  printJobList,
  printTaskInfo,
  type WorkerNames,
} from './render.js';
import { defineSubmit } from './submit-command.js';

const log = logger('hq::client');

const JOB_STATES: JobStatus[] = [
  'waiting',
  'running',
  'finished',
  'failed',
  'canceled',
  'aborted',
  'opened',
];
const CANCEL_REASON_MAX_CHARS = 200;

async function withSession<T>(
  cmd: Command,
  f: (session: ClientSession, ctx: CommandContext) => Promise<T>,
): Promise<T> {
  const ctx = makeContext(cmd);
  const session = await openSession(ctx.serverDir);
  try {
    return await f(session, ctx);
  } finally {
    session.close();
  }
}

function parseStates(text: string): Set<string> {
  const out = new Set<string>();
  for (const part of text.split(',')) {
    const s = part.trim().toLowerCase();
    if (!(JOB_STATES as string[]).includes(s)) {
      throw new HqError(
        'HQ_INVALID_ARGUMENT',
        `invalid value '${part}' for '--filter <FILTER>': expected one of ${JOB_STATES.join(', ')}`,
      );
    }
    out.add(s);
  }
  return out;
}

async function workerNames(session: ClientSession): Promise<WorkerNames> {
  const workers = await session.call('worker-list', {});
  return new Map(workers.map((w) => [w.id, w.configuration.hostname]));
}

async function jobList(
  opts: { all?: boolean; filter?: string; verbose?: boolean },
  cmd: Command,
): Promise<number> {
  const filter = opts.filter === undefined ? null : parseStates(opts.filter);
  return withSession(cmd, async (session, ctx) => {
    const all = await session.call('job-list', {});
    all.sort((a, b) => a.id - b.id);
    const shown = all.filter((j) => {
      const s = infoStatus(j);
      if (filter !== null) {
        return filter.has(s) || (filter.has('opened') && j.isOpen);
      }
      return opts.all === true || s === 'waiting' || s === 'running' || j.isOpen;
    });
    printJobList(ctx, shown, all.length, opts.verbose === true);
    return 0;
  });
}

async function jobInfo(selectorText: string, cmd: Command): Promise<number> {
  const selector = parseIdSelector(selectorText, { all: true, last: true });
  return withSession(cmd, async (session, ctx) => {
    const { jobs, missing } = await session.call('job-info', { selector, withTasks: true });
    for (const id of missing) {
      log.error(`Job ${id} not found`);
    }
    const names = await workerNames(session);
    printJobDetails(ctx, jobs, names, session.access.server_uid ?? '');
    return 0;
  });
}

async function jobCancel(
  selectorText: string,
  opts: { reason?: string },
  cmd: Command,
): Promise<number> {
  const selector = parseIdSelector(selectorText, { all: true, last: true });
  const reason = opts.reason ?? null;
  if (reason !== null && [...reason].length > CANCEL_REASON_MAX_CHARS) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `The cancel reason is too long: at most ${CANCEL_REASON_MAX_CHARS} characters are allowed`,
    );
  }
  return withSession(cmd, async (session, ctx) => {
    const { results } = await session.call('job-cancel', { selector, reason });
    if (results.length === 0) {
      log.info('There is nothing to cancel');
    }
    for (const r of results) {
      if (r.alreadyFinished === null) {
        log.error(`Canceling job ${r.jobId} failed: job not found`);
      } else if (r.canceled > 0) {
        log.info(
          `Job ${r.jobId} canceled (${r.canceled} tasks canceled, ${r.alreadyFinished} tasks already finished)`,
        );
      } else {
        log.error(`Canceling job ${r.jobId} failed: job is already finished`);
      }
    }
    if (ctx.mode === 'json') {
      printJson({});
    }
    return 0;
  });
}

async function jobWait(selectorText: string, cmd: Command): Promise<number> {
  const selector = parseIdSelector(selectorText, { all: true, last: true });
  return withSession(cmd, async (session, ctx) => {
    const res = await session.call('wait-jobs', { selector });
    if (res.invalid > 0 && selector.kind === 'ids') {
      log.warn(`${res.invalid} ${res.invalid === 1 ? 'job was' : 'jobs were'} not found`);
    }
    if (ctx.mode === 'json') {
      printJson({});
    }
    return 0;
  });
}

async function taskInfo(
  jobText: string,
  tasksText: string,
  opts: { verbose?: boolean },
  cmd: Command,
): Promise<number> {
  const selector = parseIdSelector(jobText, { last: true });
  const taskIds = new Set(parseIdSet(tasksText));
  return withSession(cmd, async (session, ctx) => {
    const { jobs } = await session.call('job-info', { selector, withTasks: true });
    const job = jobs[0];
    if (job === undefined) {
      throw new HqError('HQ_NOT_FOUND', `Job ${jobText} not found`);
    }
    const tasks = job.tasks.filter((t) => taskIds.has(t.id));
    for (const id of taskIds) {
      if (!tasks.some((t) => t.id === id)) {
        log.warn(`Task ${id} not found`);
      }
    }
    printTaskInfo(
      ctx,
      job,
      tasks,
      await workerNames(session),
      session.access.server_uid ?? '',
      opts.verbose === true,
    );
    return 0;
  });
}

async function taskList(
  jobText: string,
  opts: { tasks?: string; taskStatus?: string; verbose?: boolean },
  cmd: Command,
): Promise<number> {
  const selector = parseIdSelector(jobText, { last: true });
  const wanted = opts.tasks === undefined ? null : new Set(parseIdSet(opts.tasks));
  const states = opts.taskStatus === undefined ? null : parseStates(opts.taskStatus);
  return withSession(cmd, async (session, ctx) => {
    const { jobs } = await session.call('job-info', { selector, withTasks: true });
    const names = await workerNames(session);
    if (ctx.mode === 'json') {
      const { taskToJson, taskPaths } = await import('./render.js');
      const out: Record<string, unknown> = {};
      for (const job of jobs) {
        out[String(job.info.id)] = job.tasks
          .filter(
            (t) =>
              (wanted === null || wanted.has(t.id)) && (states === null || states.has(t.state)),
          )
          .map((t) => taskToJson(t, taskPaths(job, t, session.access.server_uid ?? '')));
      }
      printJson(out);
      return 0;
    }
    const { renderTaskList } = await import('./task-list.js');
    renderTaskList(
      ctx,
      jobs.map((job) => ({
        job,
        tasks: job.tasks.filter(
          (t) => (wanted === null || wanted.has(t.id)) && (states === null || states.has(t.state)),
        ),
      })),
      names,
      opts.verbose === true,
    );
    return 0;
  });
}

export function jobCommand(run: (f: () => Promise<number> | number) => void): Command {
  const job = withGlobals(new Command('job')).description('Commands for managing jobs');
  job.addCommand(
    withGlobals(new Command('list'))
      .description('Display information about jobs')
      .option('--all', 'Display all jobs')
      .option('--filter <FILTER>', 'Display only jobs in the given states')
      .option('--verbose', 'Display more columns')
      .action((opts: { all?: boolean; filter?: string; verbose?: boolean }, cmd: Command) =>
        run(() => jobList(opts, cmd)),
      ),
  );
  job.addCommand(
    withGlobals(new Command('info'))
      .description('Display detailed information about jobs')
      .argument('<SELECTOR>')
      .action((sel: string, _o: unknown, cmd: Command) => run(() => jobInfo(sel, cmd))),
  );
  job.addCommand(
    withGlobals(new Command('cancel'))
      .description('Cancel jobs')
      .argument('<SELECTOR>')
      .option('--reason <REASON>', 'Why the jobs are canceled')
      .action((sel: string, opts: { reason?: string }, cmd: Command) =>
        run(() => jobCancel(sel, opts, cmd)),
      ),
  );
  job.addCommand(
    withGlobals(new Command('wait'))
      .description('Wait until jobs finish')
      .argument('<SELECTOR>')
      .option('--without-close', 'Do not wait for open jobs to be closed')
      .action((sel: string, _o: unknown, cmd: Command) => run(() => jobWait(sel, cmd))),
  );
  job.addCommand(defineSubmit(new Command('submit'), run));
  return job;
}

export function taskCommand(run: (f: () => Promise<number> | number) => void): Command {
  const task = withGlobals(new Command('task')).description('Commands for displaying tasks');
  task.addCommand(
    withGlobals(new Command('info'))
      .description('Display information about tasks')
      .argument('<JOB>')
      .argument('<TASKS>')
      .option('-v, --verbose', 'Show more details')
      .action((job: string, tasks: string, o: { verbose?: boolean }, cmd: Command) =>
        run(() => taskInfo(job, tasks, o, cmd)),
      ),
  );
  task.addCommand(
    withGlobals(new Command('list'))
      .description('Display tasks of jobs')
      .argument('<JOB>')
      .option('--tasks <TASKS>', 'Only these task ids')
      .addOption(new Option('--task-status <TASK_STATUS>', 'Only tasks in these states'))
      .option('-v, --verbose', 'Show more details')
      .action((job: string, opts: { tasks?: string; taskStatus?: string }, cmd: Command) =>
        run(() => taskList(job, opts, cmd)),
      ),
  );
  return task;
}

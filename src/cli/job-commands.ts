/** `hq job ...` and `hq task ...` */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { HqError } from '../common/errors.js';
import { formatIdSet, parseIdSelector, parseIdSet } from '../common/id-set.js';
import { logger } from '../common/log.js';
import { openSession, type ClientSession } from '../client/session.js';
import type { JobStatus, TaskState } from '../transport/messages.js';
import { makeContext, parseIntOption, withGlobals, withSession } from './context.js';
import { printJson, printLine, writeOut } from './output.js';
import {
  infoStatus,
  printJobDetails,
  printJobList,
  printJobSubmitted,
  printTaskInfo,
  type WorkerNames,
} from './render.js';
import { taskPaths } from '../common/task-source.js';
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
    const { jobs, missing } = await session.call('job-info', {
      selector,
      withTasks: ctx.mode === 'json' ? true : 'summary',
    });
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
        log.error(`Canceling job ${r.jobId} failed; job not found`);
      } else if (r.canceled > 0) {
        log.info(
          `Job ${r.jobId} canceled (${r.canceled} tasks canceled, ${r.alreadyFinished} tasks already finished)`,
        );
      } else {
        log.error(`Canceling job ${r.jobId} failed; all tasks are already finished`);
      }
    }
    if (ctx.mode === 'json') {
      printJson({});
    }
    return 0;
  });
}

async function jobWait(
  selectorText: string,
  opts: { withoutClose?: boolean },
  cmd: Command,
): Promise<number> {
  const selector = parseIdSelector(selectorText, { all: true, last: true });
  return withSession(cmd, async (session, ctx) => {
    const res = await session.call('wait-jobs', {
      selector,
      withoutClose: opts.withoutClose === true,
    });
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
      const { taskToJson } = await import('./render.js');
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
    if (ctx.mode === 'quiet') {
      return 0; // upstream's quiet mode prints nothing for task lists
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

const TASK_STATES: TaskState[] = [
  'waiting',
  'running',
  'finished',
  'failed',
  'canceled',
  'aborted',
];

function parseTaskStates(text: string, flag: string): Set<TaskState> {
  const out = new Set<TaskState>();
  for (const part of text.split(',')) {
    const s = part.trim().toLowerCase() as TaskState;
    if (!TASK_STATES.includes(s)) {
      throw new HqError(
        'HQ_INVALID_ARGUMENT',
        `invalid value '${part}' for '${flag}': expected one of ${TASK_STATES.join(', ')}`,
      );
    }
    out.add(s);
  }
  return out;
}

async function jobOpen(o: { name?: string; maxFails?: string }, cmd: Command): Promise<number> {
  const maxFails =
    o.maxFails === undefined ? null : parseIntOption('--max-fails <MAX_FAILS>', o.maxFails);
  const name = o.name ?? 'job';
  if (name.includes('\n') || name.includes('\t')) {
    throw new HqError('HQ_INVALID_ARGUMENT', 'The job name must not contain a newline or a tab');
  }
  return withSession(cmd, async (session, ctx) => {
    const { jobId } = await session.call('job-open', { name, maxFails });
    if (ctx.mode === 'json') {
      printJson({ id: jobId });
    } else if (ctx.mode === 'quiet') {
      printLine(String(jobId));
    } else {
      printLine(`Job ${jobId} is open.`);
    }
    return 0;
  });
}

async function jobClose(selectorText: string, cmd: Command): Promise<number> {
  const selector = parseIdSelector(selectorText, { all: true, last: true });
  return withSession(cmd, async (session, ctx) => {
    const { results } = await session.call('job-close', { selector });
    results.sort((a, b) => a.jobId - b.jobId);
    if (results.length === 0) {
      log.info('There is nothing to close');
    }
    for (const r of results) {
      if (r.result === 'closed') {
        log.info(`Job ${r.jobId} closed`);
      } else if (r.result === 'not-found') {
        log.error(`Closing job ${r.jobId} failed; job not found`);
      } else {
        log.error(`Closing job ${r.jobId} failed; job is already closed`);
      }
    }
    if (ctx.mode === 'json') {
      printJson({});
    }
    return 0;
  });
}

async function jobForget(
  selectorText: string,
  o: { filter: string },
  cmd: Command,
): Promise<number> {
  const selector = parseIdSelector(selectorText, { all: true, last: true });
  const states = [...parseStates(o.filter)].filter((s) =>
    ['finished', 'failed', 'aborted', 'canceled'].includes(s),
  ) as JobStatus[];
  return withSession(cmd, async (session, ctx) => {
    const { forgotten, ignored } = await session.call('job-forget', { selector, states });
    let message = `${forgotten} ${forgotten === 1 ? 'job' : 'jobs'} were forgotten`;
    if (ignored > 0) {
      message += `, ${ignored} were ignored due to wrong state or invalid ID`;
    }
    log.info(message);
    if (ctx.mode === 'json') {
      printJson({});
    }
    return 0;
  });
}

const SUMMARY_ORDER: JobStatus[] = [
  'running',
  'waiting',
  'finished',
  'failed',
  'aborted',
  'canceled',
];

async function jobSummary(cmd: Command): Promise<number> {
  return withSession(cmd, async (session, ctx) => {
    const jobs = await session.call('job-list', {});
    const counts = new Map<JobStatus, number>();
    for (const j of jobs) {
      const s = infoStatus(j);
      counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    // Only the JSON map has an "Opened" entry (when some open job is idle), as upstream.
    const order: JobStatus[] = SUMMARY_ORDER;
    const title = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
    if (ctx.mode === 'json') {
      const jsonOrder: JobStatus[] = counts.has('opened')
        ? [...SUMMARY_ORDER, 'opened']
        : SUMMARY_ORDER;
      printJson(Object.fromEntries(jsonOrder.map((s) => [title(s), counts.get(s) ?? 0])));
    } else if (ctx.mode === 'quiet') {
      for (const s of order) {
        printLine(`${s.toUpperCase()} ${counts.get(s) ?? 0}`);
      }
    } else {
      const { renderHorizontalTable } = await import('./table.js');
      writeOut(
        renderHorizontalTable(
          [
            { text: 'Status', style: { bold: true } },
            { text: 'Count', style: { bold: true } },
          ],
          order.map((s) => [
            s.toUpperCase(),
            { text: String(counts.get(s) ?? 0), justify: 'right' },
          ]),
          ctx.colors,
        ),
      );
    }
    return 0;
  });
}

async function jobTaskIds(
  selectorText: string,
  o: { filter?: string },
  cmd: Command,
): Promise<number> {
  const selector = parseIdSelector(selectorText, { all: true, last: true });
  const states = o.filter === undefined ? null : parseTaskStates(o.filter, '--filter <FILTER>');
  return withSession(cmd, async (session, ctx) => {
    const { jobs } = await session.call('job-info', { selector, withTasks: true });
    const perJob = jobs.map((j) => ({
      id: j.info.id,
      ids: j.tasks.filter((t) => states === null || states.has(t.state)).map((t) => t.id),
    }));
    if (ctx.mode === 'json') {
      printJson(Object.fromEntries(perJob.map((j) => [String(j.id), j.ids])));
    } else if (ctx.mode === 'quiet') {
      // upstream's quiet mode prints nothing here
    } else if (perJob.length === 1) {
      printLine(formatIdSet(perJob[0]!.ids));
    } else {
      for (const j of perJob) {
        printLine(`${j.id}: ${formatIdSet(j.ids)}`);
      }
    }
    return 0;
  });
}

async function jobCat(
  jobText: string,
  stream: string,
  o: { tasks?: string; taskStatus?: string; printTaskHeader?: boolean },
  cmd: Command,
): Promise<number> {
  if (stream !== 'stdout' && stream !== 'stderr') {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `invalid value '${stream}' for '<STREAM>': expected stdout or stderr`,
    );
  }
  const selector = parseIdSelector(jobText, { last: true });
  const wanted = o.tasks === undefined ? null : parseIdSet(o.tasks);
  const states =
    o.taskStatus === undefined
      ? null
      : parseTaskStates(o.taskStatus, '--task-status <TASK_STATUS>');
  return withSession(cmd, async (session, ctx) => {
    if (ctx.mode === 'json') {
      throw new HqError('HQ_INVALID_ARGUMENT', "JSON output mode doesn't support job cat");
    }
    const { jobs, missing } = await session.call('job-info', { selector, withTasks: true });
    if (jobs.length === 0 && missing.length === 0) {
      log.error('No jobs were found');
    }
    for (const id of missing) {
      log.error(`Job ${id} was not found`);
    }
    for (const job of jobs) {
      let tasks = job.tasks;
      if (wanted !== null) {
        const byId = new Map(tasks.map((t) => [t.id, t]));
        tasks = [];
        for (const id of wanted) {
          const t = byId.get(id);
          if (t === undefined) {
            log.warn(`Task ${id} of job ${job.info.id} not found`);
          } else {
            tasks.push(t);
          }
        }
      }
      if (states !== null) {
        tasks = tasks.filter((t) => states.has(t.state));
      }
      if (tasks.length === 0) {
        log.warn(`No tasks were selected for job ${job.info.id}, there is nothing to print`);
        continue;
      }
      for (const t of tasks) {
        if (o.printTaskHeader) {
          printLine(`# Job ${job.info.id}, task ${t.id}`);
        }
        const paths =
          t.startedAt === null ? null : taskPaths(job, t, session.access.server_uid ?? '');
        const file = paths === null ? null : stream === 'stdout' ? paths.stdout : paths.stderr;
        if (file === null) {
          log.warn(`Task ${t.id} has no \`${stream}\` stream associated with it`);
          continue;
        }
        try {
          writeOut(readFileSync(file, 'utf8'));
        } catch (e) {
          log.warn(`File at \`${file}\` cannot be opened: ${String(e)}`);
        }
      }
    }
    return 0;
  });
}

async function jobSubmitFile(file: string, o: { job?: string }, cmd: Command): Promise<number> {
  const ctx = makeContext(cmd);
  const jobId = o.job === undefined ? null : parseIntOption('--job <JOB>', o.job);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new HqError('HQ_INVALID_ARGUMENT', `Cannot read job file ${file}: ${String(e)}`);
  }
  const { parseJobFile } = await import('../common/job-file.js');
  const jf = parseJobFile(text, process.cwd());
  const submitDir = process.cwd();
  const session = await openSession(ctx.serverDir);
  try {
    const body = jf.body;
    const { jobId: id } =
      body.kind === 'graph'
        ? await session.call('submit-graph', {
            jobId,
            name: jf.name,
            maxFails: jf.maxFails,
            graph: {
              tasks: body.tasks.map((t) => ({
                ...t,
                taskDesc: { ...t.taskDesc, streamPath: jf.stream ?? t.taskDesc.streamPath },
              })),
              submitDir,
            },
          })
        : await session.call('submit', {
            jobId,
            name: jf.name,
            maxFails: jf.maxFails,
            array: {
              ids: body.ids ?? [],
              autoIds: body.ids === null,
              entries: body.entries,
              taskDesc: { ...body.taskDesc, streamPath: jf.stream ?? body.taskDesc.streamPath },
              submitDir,
            },
          });
    printJobSubmitted(ctx, id);
  } finally {
    session.close();
  }
  return 0;
}

async function jobProgress(selectorText: string, cmd: Command): Promise<number> {
  const selector = parseIdSelector(selectorText, { all: true, last: true });
  return withSession(cmd, async (session, ctx) => {
    const { waitWithProgress } = await import('./progress.js');
    await waitWithProgress(session, ctx, selector);
    return 0;
  });
}

type Run = (f: () => Promise<number> | number) => void;

/** `hq job list`, or under another name (`hq jobs`). */
function listCommand(name: string, run: Run): Command {
  return withGlobals(new Command(name))
    .description('Display information about jobs')
    .option('--all', 'Display all jobs')
    .option('--filter <FILTER>', 'Display only jobs in the given states')
    .option('--verbose', 'Display more columns')
    .action((opts: { all?: boolean; filter?: string; verbose?: boolean }, cmd: Command) =>
      run(() => jobList(opts, cmd)),
    );
}

/** `hq job progress`, or at the top level (`hq progress`). */
function progressCommand(run: Run): Command {
  return withGlobals(new Command('progress'))
    .description('Show the progress of jobs until they end')
    .argument('<SELECTOR>')
    .action((sel: string, _o: unknown, cmd: Command) => run(() => jobProgress(sel, cmd)));
}

/**
 * The seeds' short forms, hidden from the help: `hq jobs` is `hq job list` and
 * `hq progress <SELECTOR>` is `hq job progress <SELECTOR>`.
 */
export function jobShortcutCommands(run: Run): Command[] {
  return [listCommand('jobs', run), progressCommand(run)];
}

export function jobCommand(run: Run): Command {
  const job = withGlobals(new Command('job')).description('Commands for managing jobs');
  job.addCommand(listCommand('list', run));
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
      .action((sel: string, o: { withoutClose?: boolean }, cmd: Command) =>
        run(() => jobWait(sel, o, cmd)),
      ),
  );
  job.addCommand(defineSubmit(new Command('submit'), run));
  job.addCommand(
    withGlobals(new Command('submit-file'))
      .description('Submit a job defined in a TOML file')
      .argument('<PATH>')
      .option('--job <JOB>', 'Attach the tasks to an open job')
      .action((file: string, o: { job?: string }, cmd: Command) =>
        run(() => jobSubmitFile(file, o, cmd)),
      ),
  );
  job.addCommand(
    withGlobals(new Command('open'))
      .description('Open a job that more tasks can be submitted into (`hq submit --job`)')
      .option('--name <NAME>', 'Name of the job')
      .option('--max-fails <MAX_FAILS>', 'Maximal number of failed tasks')
      .action((o: { name?: string; maxFails?: string }, cmd: Command) =>
        run(() => jobOpen(o, cmd)),
      ),
  );
  job.addCommand(
    withGlobals(new Command('close'))
      .description('Close open jobs')
      .argument('<SELECTOR>')
      .action((sel: string, _o: unknown, cmd: Command) => run(() => jobClose(sel, cmd))),
  );
  job.addCommand(
    withGlobals(new Command('forget'))
      .description('Forget completed jobs to free memory on the server')
      .argument('<SELECTOR>')
      .option(
        '--filter <FILTER>',
        'Forget only jobs in these states',
        'finished,failed,aborted,canceled',
      )
      .action((sel: string, o: { filter: string }, cmd: Command) =>
        run(() => jobForget(sel, o, cmd)),
      ),
  );
  job.addCommand(
    withGlobals(new Command('summary'))
      .description('Show the number of jobs in each state')
      .action((_o: unknown, cmd: Command) => run(() => jobSummary(cmd))),
  );
  job.addCommand(
    withGlobals(new Command('task-ids'))
      .description('Print the task ids of jobs')
      .argument('<SELECTOR>')
      .option('--filter <FILTER>', 'Only tasks in these states')
      .action((sel: string, o: { filter?: string }, cmd: Command) =>
        run(() => jobTaskIds(sel, o, cmd)),
      ),
  );
  job.addCommand(
    withGlobals(new Command('cat'))
      .description('Print the stdout or stderr of tasks')
      .argument('<JOB>')
      .argument('<STREAM>', 'stdout or stderr')
      .option('--tasks <TASKS>', 'Only these tasks')
      .option('--task-status <TASK_STATUS>', 'Only tasks in these states')
      .option('--print-task-header', 'Print a header line before the output of each task')
      .action(
        (
          jobText: string,
          stream: string,
          o: { tasks?: string; taskStatus?: string; printTaskHeader?: boolean },
          cmd: Command,
        ) => run(() => jobCat(jobText, stream, o, cmd)),
      ),
  );
  job.addCommand(progressCommand(run));
  return job;
}

export function taskCommand(run: Run): Command {
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
  task.addCommand(
    withGlobals(new Command('explain'))
      .description('Explain why a task can or cannot run on each worker')
      .argument('<JOB>')
      .argument('<TASK>')
      .action((jobText: string, taskText: string, _o: unknown, cmd: Command) =>
        run(async () => {
          const selector = parseIdSelector(jobText, { last: true });
          const taskId = parseIntOption('<TASK>', taskText);
          return withSession(cmd, async (session, ctx) => {
            const res = await session.call('task-explain', { selector, taskId });
            const { printExplanation } = await import('./explain.js');
            printExplanation(ctx, res.jobId, res.taskId, res.explanation);
            return 0;
          });
        }),
      ),
  );
  task.addCommand(
    withGlobals(new Command('notify'))
      .description('Send a notification from inside a task to `hq submit --wait --on-notify`')
      .argument('<MESSAGE>')
      .action((message: string, _o: unknown, cmd: Command) =>
        run(async () => {
          makeContext(cmd);
          const { sendNotification } = await import('../worker/notify.js');
          await sendNotification(process.env['HQ_ACCESS_KEY'], message);
          return 0;
        }),
      ),
  );
  return task;
}

/**
 * How command results look in each output mode. Commands gather data; these functions print
 * it as upstream does: tables (cli), one sorted JSON value (json), or bare lines (quiet).
 */
import { formatDuration, formatHumanDuration } from '../common/duration.js';
import { formatIdSet } from '../common/id-set.js';
import { submitOf, taskPaths } from '../common/task-source.js';
import {
  allocRequestToJson,
  descriptorToJson,
  formatResourceVariants,
  resourcesSummary,
} from '../common/resources.js';
import type {
  AllocationInfo,
  QueueInfo,
  JobDetail,
  JobInfo,
  JobStatus,
  ServerInfo,
  StdioDef,
  TaskDesc,
  TaskInfo,
  WorkerInfo,
} from '../transport/messages.js';
import { jobStatus } from '../server/state.js';
import { logger } from '../common/log.js';

const log = logger('hq::client');
import {
  float,
  jsonDate,
  printJson,
  printLine,
  tableDate,
  type OutputMode,
  writeOut,
} from './output.js';
import { renderHorizontalTable, renderVerticalTable, type Cell } from './table.js';

export interface RenderContext {
  mode: OutputMode;
  colors: boolean;
}

const bold = (text: string): Cell => ({ text, style: { bold: true } });

const STATUS_COLOR: Record<JobStatus, 'cyan' | 'green' | 'red' | 'yellow' | 'magenta' | 'blue'> = {
  waiting: 'cyan',
  opened: 'cyan',
  finished: 'green',
  failed: 'red',
  running: 'yellow',
  canceled: 'magenta',
  aborted: 'blue',
};

function statusCell(status: JobStatus): Cell {
  return { text: status.toUpperCase(), style: { color: STATUS_COLOR[status] } };
}

export function infoStatus(info: JobInfo): JobStatus {
  return jobStatus(info.nTasks, info.counters, info.isOpen);
}

function waitingCount(info: JobInfo): number {
  const c = info.counters;
  return info.nTasks - c.running - c.finished - c.failed - c.canceled - c.aborted;
}

// ---- server ------------------------------------------------------------------------------

export function printServerInfo(
  ctx: RenderContext,
  info: ServerInfo,
  serverDir: string | null,
): void {
  if (ctx.mode === 'json') {
    printJson({
      client_host: info.clientHost,
      client_port: info.clientPort,
      journal_path: info.journalPath,
      pid: info.pid,
      server_dir: serverDir,
      server_uid: info.serverUid,
      start_date: jsonDate(info.startDate),
      version: info.version,
      worker_host: info.workerHost,
      worker_port: info.workerPort,
    });
    return;
  }
  if (ctx.mode === 'quiet') {
    if (serverDir !== null) {
      printLine(serverDir);
    }
    return;
  }
  const rows: Cell[][] = [
    [bold('Server UID'), info.serverUid],
    [bold('Client host'), info.clientHost],
    [bold('Client port'), String(info.clientPort)],
    [bold('Worker host'), info.workerHost],
    [bold('Worker port'), String(info.workerPort)],
    [bold('Version'), info.version],
    [bold('Pid'), String(info.pid)],
    [bold('Start date'), tableDate(info.startDate)],
    [bold('Journal path'), info.journalPath ?? ''],
  ];
  if (serverDir !== null) {
    rows.unshift([bold('Server directory'), serverDir]);
  }
  writeOut(renderVerticalTable(rows, ctx.colors));
}

/** The answer to a submit: upstream's sentence, `{"id": N}`, or the bare id. */
export function printJobSubmitted(ctx: RenderContext, jobId: number): void {
  if (ctx.mode === 'json') {
    printJson({ id: jobId });
  } else if (ctx.mode === 'quiet') {
    printLine(String(jobId));
  } else {
    printLine(`Job submitted successfully, job ID: ${jobId}`);
  }
}

// ---- workers -----------------------------------------------------------------------------

const WORKER_STATE: Record<string, { text: string; color: 'green' | 'red' | 'cyan' | 'magenta' }> =
  {
    running: { text: 'RUNNING', color: 'green' },
    'connection-lost': { text: 'CONNECTION LOST', color: 'red' },
    'heartbeat-lost': { text: 'HEARTBEAT LOST', color: 'red' },
    'idle-timeout': { text: 'IDLE TIMEOUT', color: 'cyan' },
    stopped: { text: 'STOPPED', color: 'magenta' },
    'time-limit': { text: 'TIME LIMIT REACHED', color: 'cyan' },
  };

export function workerStateText(w: WorkerInfo): string {
  return WORKER_STATE[w.ended?.reason ?? 'running']!.text;
}

function workerStateCell(w: WorkerInfo): Cell {
  const s = WORKER_STATE[w.ended?.reason ?? 'running']!;
  return { text: s.text, style: { color: s.color } };
}

function managerName(w: WorkerInfo): string {
  return w.configuration.manager === null
    ? 'None'
    : w.configuration.manager.kind === 'PBS'
      ? 'PBS'
      : 'SLURM';
}

function durationOrNone(ms: number | null): string {
  return ms === null ? 'None' : formatDuration(ms);
}

export function workerToJson(w: WorkerInfo): unknown {
  const c = w.configuration;
  return {
    allocation:
      c.manager === null
        ? null
        : { id: c.manager.jobId, manager: c.manager.kind === 'PBS' ? 'PBS' : 'Slurm' },
    configuration: {
      group: c.group,
      heartbeat_interval: float(c.heartbeatIntervalMs / 1000),
      hostname: c.hostname,
      idle_timeout: c.idleTimeoutMs === null ? null : float(c.idleTimeoutMs / 1000),
      listen_address: c.listenAddress,
      min_utilization: float(c.minUtilization),
      on_server_lost: c.onServerLost,
      resources: descriptorToJson(c.resources),
      time_limit: c.timeLimitMs === null ? null : float(c.timeLimitMs / 1000),
      work_dir: c.workDir,
    },
    ended: w.ended === null ? null : { at: jsonDate(w.ended.at) },
    id: w.id,
    last_task_started:
      w.lastTaskStarted === null
        ? null
        : {
            task_id: { job_id: w.lastTaskStarted.jobId, job_task_id: w.lastTaskStarted.taskId },
            time: jsonDate(w.lastTaskStarted.at),
          },
    runtime_info:
      w.ended !== null
        ? null
        : w.multiNode !== null
          ? { MultiNodeTask: { main_node: w.multiNode.main } }
          : {
              SingleNodeTasks: {
                assigned_tasks: w.assignedTasks,
                is_reserved: false,
                running_tasks: w.runningTasks,
              },
            },
    started: jsonDate(w.startedAt),
  };
}

export function printWorkerList(ctx: RenderContext, workers: WorkerInfo[]): void {
  if (ctx.mode === 'json') {
    printJson(workers.map(workerToJson));
    return;
  }
  if (ctx.mode === 'quiet') {
    for (const w of workers) {
      printLine(`${w.id} ${workerStateText(w)}`);
    }
    return;
  }
  const header: Cell[] = [
    'ID',
    bold('State'),
    bold('Hostname'),
    bold('Resources'),
    bold('Manager'),
    bold('Manager Job ID'),
  ];
  const rows: Cell[][] = workers.map((w) => [
    { text: String(w.id), justify: 'right' },
    workerStateCell(w),
    w.configuration.hostname,
    resourcesSummary(w.configuration.resources, false),
    managerName(w),
    w.configuration.manager?.jobId ?? 'N/A',
  ]);
  writeOut(renderHorizontalTable(header, rows, ctx.colors));
}

export function printWorkerInfo(ctx: RenderContext, workers: WorkerInfo[]): void {
  if (ctx.mode === 'json') {
    printJson(workers.map(workerToJson));
    return;
  }
  if (ctx.mode === 'quiet') {
    return; // upstream's quiet mode prints nothing for worker details
  }
  workers.forEach((w, i) => {
    if (i > 0) {
      printLine('');
    }
    const c = w.configuration;
    const rows: Cell[][] = [
      [bold('Worker'), String(w.id)],
      [bold('State'), workerStateCell(w)],
      [bold('Hostname'), c.hostname],
      [bold('Started'), jsonDate(w.startedAt)],
      [bold('Data provider'), c.listenAddress],
      [bold('Working directory'), c.workDir],
      [bold('Heartbeat'), formatDuration(c.heartbeatIntervalMs)],
      [bold('Idle timeout'), durationOrNone(c.idleTimeoutMs)],
      [bold('Overview interval'), durationOrNone(c.overviewIntervalMs)],
      [bold('Resources'), resourcesSummary(c.resources, true)],
      [bold('Time Limit'), durationOrNone(c.timeLimitMs)],
      [bold('Process pid'), String(c.pid)],
      [bold('Group'), c.group],
      [bold('Manager'), managerName(w)],
      [bold('Manager Job ID'), c.manager?.jobId ?? 'N/A'],
      [
        bold('Last task started'),
        w.lastTaskStarted === null
          ? ''
          : `${w.lastTaskStarted.jobId}@${w.lastTaskStarted.taskId}; Time: ${jsonDate(w.lastTaskStarted.at)}`,
      ],
    ];
    if (w.ended === null) {
      let runtime: string;
      if (w.multiNode !== null) {
        runtime = `running multinode task; ${w.multiNode.main ? 'main node' : 'secondary node'}`;
      } else {
        runtime = `assigned tasks: ${w.assignedTasks}`;
        if (w.runningTasks > 0) {
          runtime += `; running tasks: ${w.runningTasks}`;
        }
      }
      rows.push([bold('Runtime Info'), runtime]);
    }
    writeOut(renderVerticalTable(rows, ctx.colors));
  });
}

// ---- jobs --------------------------------------------------------------------------------

function jobInfoToJson(info: JobInfo): unknown {
  const c = info.counters;
  return {
    cancel_reason: info.cancelReason,
    id: info.id,
    is_open: info.isOpen,
    name: info.name,
    task_count: info.nTasks,
    task_stats: {
      aborted: c.aborted,
      canceled: c.canceled,
      failed: c.failed,
      finished: c.finished,
      running: c.running,
      waiting: waitingCount(info),
    },
  };
}

function truncateMiddle(text: string, max: number): string {
  const chars = [...text];
  if (chars.length <= max) {
    return text;
  }
  const keep = max - 3;
  const head = Math.ceil(keep / 2);
  return `${chars.slice(0, head).join('')}...${chars.slice(chars.length - (keep - head)).join('')}`;
}

export function printJobList(
  ctx: RenderContext,
  jobs: JobInfo[],
  total: number,
  verbose: boolean,
): void {
  if (ctx.mode === 'json') {
    printJson(jobs.map(jobInfoToJson));
    return;
  }
  if (ctx.mode === 'quiet') {
    for (const j of jobs) {
      printLine(`${j.id} ${infoStatus(j).toUpperCase()}`);
    }
    return;
  }
  let hasOpen = false;
  const rows: Cell[][] = jobs.map((j) => {
    hasOpen ||= j.isOpen;
    const row: Cell[] = [
      { text: j.isOpen ? `*${j.id}` : String(j.id), justify: 'right' },
      truncateMiddle(j.name, 50),
      statusCell(infoStatus(j)),
      String(j.nTasks),
    ];
    if (verbose) {
      row.push(j.cancelReason ?? '');
    }
    return row;
  });
  const header: Cell[] = [bold('ID'), bold('Name'), bold('State'), bold('Tasks')];
  if (verbose) {
    header.push(bold('Cancel Reason'));
  }
  writeOut(renderHorizontalTable(header, rows, ctx.colors));
  if (hasOpen) {
    printLine('* = Open jobs');
  }
  if (jobs.length !== total) {
    printLine(
      `There ${total === 1 ? 'is' : 'are'} ${total} ${total === 1 ? 'job' : 'jobs'} in total. Use \`--all\` to display all jobs.`,
    );
  }
}

export function progressBar(info: JobInfo, width: number): string {
  const c = info.counters;
  let used = 0;
  let bar = '[';
  for (const count of [c.canceled, c.failed, c.finished, c.running, c.aborted]) {
    const chars = Math.min(width - used, Math.ceil((count / Math.max(info.nTasks, 1)) * width));
    bar += '#'.repeat(chars);
    used += chars;
  }
  return `${bar}${'.'.repeat(Math.max(width - used, 0))}]`;
}

function multiTaskState(info: JobInfo): string {
  const c = info.counters;
  let out = `${progressBar(info, 40)}\n`;
  const parts: [string, number][] = [
    ['RUNNING', c.running],
    ['FAILED', c.failed],
    ['FINISHED', c.finished],
    ['CANCELED', c.canceled],
    ['WAITING', waitingCount(info)],
    ['ABORTED', c.aborted],
  ];
  for (const [name, count] of parts) {
    if (count > 0) {
      out += `${name} (${count})\n`;
    }
  }
  return out.trimEnd();
}

function stdioText(def: StdioDef): string {
  return def.kind === 'null' ? '<None>' : def.kind === 'pipe' ? '<Stream>' : def.path;
}

function crashLimitText(limit: TaskDesc['crashLimit']): string {
  return String(limit);
}

/** `%d.%m.%Y %H:%M:%S` in local time, as upstream prints task start and end. */
export function localTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${p(d.getDate())}.${p(d.getMonth() + 1)}.${d.getFullYear()} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Cuts an error to `max` characters plus `...` (upstream cuts at `len >= max`). */
export function truncateError(error: string, max: number): { text: string; truncated: boolean } {
  const chars = [...error];
  if (chars.length >= max) {
    return { text: `${chars.slice(0, max).join('')}...`, truncated: true };
  }
  return { text: error, truncated: false };
}

export function taskMakespan(t: TaskInfo): string {
  if (t.startedAt === null) {
    return '';
  }
  return formatHumanDuration((t.finishedAt ?? Date.now()) - t.startedAt);
}

export type WorkerNames = Map<number, string>;

function workersText(ids: number[], names: WorkerNames): string {
  return ids.map((id) => names.get(id) ?? 'N/A').join('\n');
}

export function taskToJson(
  task: TaskInfo,
  paths: { cwd: string; stdout: string | null; stderr: string | null } | null,
): unknown {
  const out: Record<string, unknown> = { id: task.id, state: task.state };
  if (paths !== null && task.startedAt !== null) {
    out['cwd'] = paths.cwd;
    out['stdout'] = paths.stdout;
    out['stderr'] = paths.stderr;
  }
  const started = task.state === 'running' || task.state === 'finished' || task.state === 'failed';
  if (started && task.startedAt !== null && task.workers.length > 0) {
    out['started_at'] = jsonDate(task.startedAt);
    if (task.workers.length === 1) {
      out['worker'] = task.workers[0];
    } else {
      out['workers'] = task.workers;
    }
  }
  if ((task.state === 'finished' || task.state === 'failed') && task.finishedAt !== null) {
    out['finished_at'] = jsonDate(task.finishedAt);
  }
  if (task.state === 'failed') {
    out['error'] = task.error ?? '';
  }
  return out;
}

function taskDescOf(job: JobDetail, taskId: number): TaskDesc | undefined {
  return submitOf(job, taskId)?.taskDesc;
}

function taskDescToJson(desc: TaskDesc): unknown {
  const stdio = (d: StdioDef): string | null =>
    d.kind === 'null' ? null : d.kind === 'pipe' ? '<pipe>' : d.path;
  return {
    crash_limit: desc.crashLimit,
    pin_mode: desc.pinMode === 'omp' ? 'openmp' : desc.pinMode,
    priority: desc.priority,
    program: {
      args: desc.program.args,
      cwd: desc.program.cwd,
      env: desc.program.env,
      stderr: stdio(desc.program.stderr),
      stdout: stdio(desc.program.stdout),
    },
    resources: desc.resources.map((r) => ({
      min_time: float(r.minTimeMs / 1000),
      n_nodes: r.nNodes,
      resources: r.resources.map((e) => ({
        request: allocRequestToJson(e.request),
        resource: e.resource,
      })),
      weight: r.weight,
    })),
    task_dir: desc.taskDir,
    time_limit: desc.timeLimitMs === null ? null : float(desc.timeLimitMs / 1000),
  };
}

export function jobDetailToJson(job: JobDetail, serverUid: string): unknown {
  return {
    finished_at: job.completedAt === null ? null : jsonDate(job.completedAt),
    info: jobInfoToJson(job.info),
    max_fails: job.maxFails,
    started_at: jsonDate(job.submittedAt),
    submits: job.submits.map((s) =>
      s.kind === 'array'
        ? { array: taskDescToJson(s.taskDesc) }
        : { graph: s.tasks.map((t) => taskDescToJson(t.taskDesc)) },
    ),
    tasks: job.tasks.map((t) => taskToJson(t, taskPaths(job, t, serverUid))),
  };
}

export function printJobDetails(
  ctx: RenderContext,
  jobs: JobDetail[],
  names: WorkerNames,
  serverUid: string,
): void {
  if (ctx.mode === 'json') {
    printJson(jobs.map((j) => jobDetailToJson(j, serverUid)));
    return;
  }
  if (ctx.mode === 'quiet') {
    return; // upstream's quiet mode prints nothing for job details
  }
  for (const job of jobs) {
    const info = job.info;
    const rows: Cell[][] = [
      [bold('ID'), String(info.id)],
      [bold('Name'), info.name],
      [bold('State'), info.nTasks === 1 ? statusCell(infoStatus(info)) : multiTaskState(info)],
      [bold('Cancel Reason'), info.cancelReason ?? ''],
      [bold('Session'), info.isOpen ? 'open' : 'closed'],
    ];
    const taskIds = job.summary?.taskIds ?? formatIdSet(job.tasks.map((t) => t.id));
    rows.push([
      bold('Tasks'),
      taskIds !== '' ? `${info.nTasks}; Ids: ${taskIds}` : String(info.nTasks),
    ]);
    const workerIds =
      job.summary?.workers ??
      [...new Set(job.tasks.flatMap((t) => (t.startedAt !== null ? t.workers : [])))].sort(
        (a, b) => a - b,
      );
    let workersCell = workerIds
      .slice(0, 2)
      .map((id) => names.get(id) ?? 'N/A')
      .join(',');
    if (workerIds.length > 2) {
      workersCell += `, … (${workerIds.length} total)`;
    }
    rows.push([bold('Workers'), workersCell]);
    const submit = job.submits.length === 1 ? job.submits[0] : undefined;
    if (submit?.kind === 'array') {
      const desc = submit.taskDesc;
      const p = desc.program;
      rows.push([bold('Resources'), formatResourceVariants(desc.resources)]);
      rows.push([bold('Pin'), desc.pinMode ?? 'none']);
      rows.push([bold('Priority'), String(desc.priority)]);
      rows.push([bold('Command'), p.args.join('\n')]);
      rows.push([bold('Stdout'), stdioText(p.stdout)]);
      rows.push([bold('Stderr'), stdioText(p.stderr)]);
      rows.push([
        bold('Environment'),
        Object.entries(p.env)
          .filter(([k]) => !k.startsWith('HQ_'))
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([k, v]) => `${k}=${v}`)
          .join('\n'),
      ]);
      rows.push([bold('Working directory'), p.cwd]);
      rows.push([bold('Task time limit'), durationOrNone(desc.timeLimitMs)]);
      rows.push([bold('Crash limit'), crashLimitText(desc.crashLimit)]);
    }
    rows.push([bold('Submission date'), tableDate(job.submittedAt)]);
    if (submit !== undefined) {
      rows.push([bold('Submission directory'), submit.submitDir]);
    }
    const end = job.completedAt ?? Date.now();
    rows.push([bold('Makespan'), formatHumanDuration(end - job.submittedAt)]);
    writeOut(renderVerticalTable(rows, ctx.colors));
    printFailedTasks(ctx, job, names);
  }
}

export function printFailedTasks(ctx: RenderContext, job: JobDetail, names: WorkerNames): void {
  const failed = job.tasks.filter((t) => t.state === 'failed');
  if (failed.length === 0) {
    return;
  }
  const shown = failed.slice(0, 5);
  const rows: Cell[][] = shown.map((t) => [
    String(t.id),
    t.startedAt === null ? '' : workersText(t.workers, names),
    { text: t.error ?? '', style: { color: 'red' } },
  ]);
  writeOut(
    renderHorizontalTable([bold('Task ID'), bold('Worker'), bold('Error')], rows, ctx.colors),
  );
  if (shown.length < job.info.counters.failed) {
    printLine(`${job.info.counters.failed} tasks failed. (${shown.length} shown)`);
  } else {
    printLine(`${job.info.counters.failed} tasks failed.`);
  }
}

export function printTaskInfo(
  ctx: RenderContext,
  job: JobDetail,
  tasks: TaskInfo[],
  names: WorkerNames,
  serverUid: string,
  verbose: boolean,
): void {
  if (ctx.mode === 'json') {
    printJson(tasks.map((t) => taskToJson(t, taskPaths(job, t, serverUid))));
    return;
  }
  if (ctx.mode === 'quiet') {
    return; // upstream's quiet mode prints nothing for task details
  }
  let truncated = false;
  for (const t of tasks) {
    const paths = t.startedAt === null ? null : taskPaths(job, t, serverUid);
    const desc = taskDescOf(job, t.id);
    let error: Cell = '';
    if (t.state === 'failed') {
      const e = verbose
        ? { text: t.error ?? '', truncated: false }
        : truncateError(t.error ?? '', 237);
      truncated ||= e.truncated;
      error = { text: e.text, style: { color: 'red' } };
    }
    const env = desc
      ? Object.entries(desc.program.env)
          .filter(([k]) => !k.startsWith('HQ_'))
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([k, v]) => `${k}=${v}`)
          .join('\n')
      : '';
    const rows: Cell[][] = [
      [bold('Task ID'), String(t.id)],
      [bold('State'), statusCell(t.state)],
      [bold('Command'), desc ? desc.program.args.join('\n') : ''],
      [bold('Environment'), env],
      [bold('Worker'), t.startedAt === null ? '' : workersText(t.workers, names)],
      [bold('Start'), t.startedAt === null ? '' : localTime(t.startedAt)],
      [bold('End'), t.finishedAt === null || t.startedAt === null ? '' : localTime(t.finishedAt)],
      [bold('Makespan'), taskMakespan(t)],
      [bold('Workdir'), paths?.cwd ?? ''],
      [bold('Stdout'), paths === null ? '' : (paths.stdout ?? '<None>')],
      [bold('Stderr'), paths === null ? '' : (paths.stderr ?? '<None>')],
      [bold('Time limit'), durationOrNone(desc?.timeLimitMs ?? null)],
      [bold('Resources'), desc ? formatResourceVariants(desc.resources) : ''],
      [bold('Priority'), String(desc?.priority ?? 0)],
      [bold('Pin'), desc?.pinMode ?? 'none'],
      [bold('Task dir'), desc?.taskDir ? 'yes' : 'no'],
      [bold('Crash limit'), desc ? crashLimitText(desc.crashLimit) : ''],
      [bold('Dependencies'), (submitOf(job, t.id)?.deps ?? []).join(',')],
      [bold('Error'), error],
    ];
    writeOut(renderVerticalTable(rows, ctx.colors));
  }
  if (truncated) {
    log.info('An error message(s) was truncated. Use -v to display the full error(s).');
  }
}

// ---- autoalloc -------------------------------------------------------------------------------

const MANAGER_CLI = { pbs: 'PBS', slurm: 'SLURM' } as const;
const MANAGER_JSON = { pbs: 'PBS', slurm: 'Slurm' } as const;

export function printQueues(ctx: RenderContext, queues: QueueInfo[]): void {
  const sorted = [...queues].sort((a, b) => a.id - b.id);
  if (ctx.mode === 'json') {
    printJson(
      sorted.map((q) => ({
        id: q.id,
        name: q.params.name,
        state: q.state === 'active' ? 'Active' : 'Paused',
        manager: MANAGER_JSON[q.params.manager],
        additional_args: q.params.additionalArgs,
        backlog: q.params.backlog,
        max_workers_per_alloc: q.params.maxWorkersPerAlloc,
        timelimit: q.params.timeLimitMs === null ? null : float(q.params.timeLimitMs / 1000),
        max_worker_count: q.params.maxWorkerCount,
        worker_args: q.params.workerArgs,
        known_worker_resources:
          q.knownWorkerResources === null ? null : descriptorToJson(q.knownWorkerResources),
      })),
    );
    return;
  }
  if (ctx.mode === 'quiet') {
    return;
  }
  const header = [
    'ID',
    'State',
    'Backlog size',
    'Max workers per alloc',
    'Max worker count',
    'Timelimit',
    'Manager',
    'Worker resources',
    'Name',
    'Args',
  ].map(bold);
  const rows: Cell[][] = sorted.map((q) => [
    String(q.id),
    q.state === 'active' ? 'ACTIVE' : 'PAUSED',
    String(q.params.backlog),
    String(q.params.maxWorkersPerAlloc),
    String(q.params.maxWorkerCount ?? 0),
    durationOrNone(q.params.timeLimitMs),
    MANAGER_CLI[q.params.manager],
    q.knownWorkerResources === null ? '<unknown>' : resourcesSummary(q.knownWorkerResources, false),
    q.params.name ?? '',
    q.params.additionalArgs.join(','),
  ]);
  writeOut(renderHorizontalTable(header, rows, ctx.colors));
}

const ALLOCATION_COLOR = {
  queued: 'yellow',
  running: 'blue',
  finished: 'green',
  failed: 'red',
} as const;

export function printAllocations(ctx: RenderContext, allocations: AllocationInfo[]): void {
  if (ctx.mode === 'json') {
    printJson(
      allocations.map((a) => ({
        id: a.id,
        target_worker_count: a.targetWorkerCount,
        queued_at: jsonDate(a.queuedAt),
        started_at: a.startedAt === null ? null : jsonDate(a.startedAt),
        ended_at: a.endedAt === null ? null : jsonDate(a.endedAt),
        status: a.status,
        workdir: a.workdir,
      })),
    );
    return;
  }
  if (ctx.mode === 'quiet') {
    return;
  }
  const sorted = [...allocations].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const header = [
    'ID',
    'State',
    'Working directory',
    'Worker count',
    'Queue time',
    'Start time',
    'Finish time',
  ].map(bold);
  const rows: Cell[][] = sorted.map((a) => [
    a.id,
    { text: a.status.toUpperCase(), style: { color: ALLOCATION_COLOR[a.status] } },
    a.workdir,
    String(a.targetWorkerCount),
    localTime(a.queuedAt),
    a.startedAt === null ? '' : localTime(a.startedAt),
    a.endedAt === null ? '' : localTime(a.endedAt),
  ]);
  writeOut(renderHorizontalTable(header, rows, ctx.colors));
}

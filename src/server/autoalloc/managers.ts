/**
 * What differs between PBS and Slurm for automatic allocation, as pure functions: the submit
 * script, reading the job id out of the submit command's output, the status command and how to
 * read its output, and the cancel command. Running the commands is the service's business.
 */
import { HqError } from '../../common/errors.js';
import type { AllocManager, QueueParams } from '../../transport/messages.js';
import { formatDuration } from '../../common/duration.js';

export const DEFAULT_WORKER_IDLE_TIMEOUT_MS = 5 * 60_000;

/** What the batch system says about one allocation. */
export type ExternalStatus =
  | { kind: 'queued' }
  | { kind: 'running' }
  | { kind: 'finished' | 'failed'; startedAt: number | null; endedAt: number };

export interface ScriptOptions {
  nodes: number;
  /** null: no walltime line, the batch system's default applies. */
  timeLimitMs: number | null;
  /** The job name the batch system shows. */
  name: string;
  stdout: string;
  stderr: string;
  additionalArgs: string[];
  workerCommand: string;
  /** Dry run: PBS submits the test job held, so that it never starts. */
  held: boolean;
}

/** `HH:MM:SS`, hours unbounded: the walltime syntax both PBS and Slurm accept. */
export function formatWalltime(ms: number): string {
  const total = Math.floor(ms / 1000);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(Math.floor(total / 3600))}:${two(Math.floor((total % 3600) / 60))}:${two(total % 60)}`;
}

/** `<name or hq-<queue>>-<n>`: the job name of the n-th allocation of a queue. */
export function allocationName(queueName: string | null, queueId: number, n: number): string {
  return `${queueName ?? `hq-${queueId}`}-${n}`;
}

/**
 * The command line that starts one worker inside an allocation: an optional `RUST_LOG`, the
 * wrap command, our own executable, then the queue's worker arguments; wrapped by the start and
 * stop commands.
 */
export function workerCommand(
  params: QueueParams,
  hqPath: string,
  instanceDir: string,
  rustLog: string | undefined,
): string {
  const env = rustLog === undefined ? '' : `RUST_LOG=${rustLog} `;
  const wrap = params.workerWrapCmd === null ? '' : `${params.workerWrapCmd.trim()} `;
  const idle = formatDuration(params.idleTimeoutMs ?? DEFAULT_WORKER_IDLE_TIMEOUT_MS);
  let command =
    `${env}${wrap}${hqPath} worker start --idle-timeout "${idle}" --manager "${params.manager}"` +
    ` --server-dir "${instanceDir}"`;
  if (params.workerArgs.length > 0) {
    command += ` ${params.workerArgs.join(' ')}`;
  }
  if (params.workerStartCmd !== null) {
    command = `${params.workerStartCmd} && ${command}`;
  }
  if (params.workerStopCmd !== null) {
    command += `; ${params.workerStopCmd}`;
  }
  return command;
}

/**
 * srun runs a program, not a shell line: a leading `NAME=value` would be taken for the
 * program's name (`execve(): RUST_LOG=...: No such file or directory`) and no worker would
 * start. `env` sets it instead. This is the one place where our scripts differ from
 * upstream's, whose multi-node Slurm allocations fail this way (its mock test asserts the
 * broken line).
 */
function srunProgram(command: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*=/.test(command) ? `env ${command}` : command;
}

export function submitScript(manager: AllocManager, o: ScriptOptions): string {
  const lines = ['#!/bin/bash'];
  const extra = o.additionalArgs.join(' ');
  if (manager === 'pbs') {
    lines.push(
      `#PBS -l select=${o.nodes}`,
      `#PBS -N ${o.name}`,
      `#PBS -o ${o.stdout}`,
      `#PBS -e ${o.stderr}`,
    );
    if (o.timeLimitMs !== null) {
      lines.push(`#PBS -l walltime=${formatWalltime(o.timeLimitMs)}`);
    }
    if (extra !== '') {
      lines.push(`#PBS ${extra}`);
    }
    if (o.held) {
      lines.push('#PBS -h');
    }
    lines.push('');
    lines.push(o.nodes > 1 ? `pbsdsh -- bash -l -c '${o.workerCommand}'` : o.workerCommand);
  } else {
    lines.push(
      `#SBATCH --nodes=${o.nodes}`,
      `#SBATCH --job-name=${o.name}`,
      `#SBATCH --output=${o.stdout}`,
      `#SBATCH --error=${o.stderr}`,
    );
    if (o.timeLimitMs !== null) {
      lines.push(`#SBATCH --time=${formatWalltime(o.timeLimitMs)}`);
    }
    if (extra !== '') {
      lines.push(`#SBATCH ${extra}`);
    }
    lines.push('');
    lines.push(
      o.nodes > 1
        ? `srun --overlap --ntasks=${o.nodes} --nodes=${o.nodes} ${srunProgram(o.workerCommand)}`
        : o.workerCommand,
    );
  }
  return `${lines.join('\n')}\n`;
}

export function submitProgram(manager: AllocManager): string {
  return manager === 'pbs' ? 'qsub' : 'sbatch';
}

export function cancelCommand(manager: AllocManager, id: string): string[] {
  return manager === 'pbs' ? ['qdel', id] : ['scancel', id];
}

/** The allocation id in the submit command's output (qsub prints it; sbatch says so). */
export function parseSubmitOutput(manager: AllocManager, stdout: string): string {
  const text = stdout.trim();
  if (manager === 'pbs') {
    if (text === '') {
      throw new HqError('HQ_ALLOCATION', 'qsub printed no job id');
    }
    return text;
  }
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed.toLowerCase().startsWith('submitted batch job')) {
      const id = trimmed.split(' ')[3];
      if (id !== undefined && id !== '') {
        return id;
      }
    }
  }
  throw new HqError('HQ_ALLOCATION', `Missing job id in sbatch output\n${text}`);
}

/** The status commands for some allocations: one `qstat` for all, one `scontrol` each. */
export function statusCommands(manager: AllocManager, ids: readonly string[]): string[][] {
  if (manager === 'pbs') {
    return [['qstat', ...ids.flatMap((id) => ['-f', id]), '-F', 'json', '-x']];
  }
  return ids.map((id) => ['scontrol', 'show', 'job', id]);
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** PBS times look like `Sun Nov 22 05:10:00 2026`, in local time. */
export function parsePbsTime(text: string): number {
  const m = /^\w{3}\s+(\w{3})\s+(\d{1,2})\s+(\d{1,2}):(\d{2}):(\d{2})\s+(\d{4})$/.exec(text.trim());
  const month = m === null ? -1 : MONTHS.indexOf(m[1]!.toLowerCase());
  if (m === null || month < 0) {
    throw new HqError('HQ_ALLOCATION', `Cannot parse PBS time '${text}'`);
  }
  return new Date(
    Number(m[6]),
    month,
    Number(m[2]),
    Number(m[3]),
    Number(m[4]),
    Number(m[5]),
  ).getTime();
}

/** Slurm times look like `2026-11-22T05:10:00`, in local time. */
export function parseSlurmTime(text: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/.exec(text.trim());
  if (m === null) {
    throw new HqError('HQ_ALLOCATION', `Cannot parse Slurm time '${text}'`);
  }
  return new Date(
    Number(m[1]),
    Number(m[2]) - 1,
    Number(m[3]),
    Number(m[4]),
    Number(m[5]),
    Number(m[6]),
  ).getTime();
}

/**
 * Statuses out of `qstat -f ... -F json -x`. An allocation missing from the output is not in
 * the map (the caller treats it as gone); one that cannot be read maps to an Error.
 */
export function parsePbsStatus(
  stdout: string,
  ids: readonly string[],
): Map<string, ExternalStatus | Error> {
  let data: unknown;
  try {
    data = JSON.parse(stdout);
  } catch {
    throw new HqError('HQ_ALLOCATION', 'Cannot parse qstat JSON output');
  }
  const jobs =
    typeof data === 'object' && data !== null ? (data as Record<string, unknown>)['Jobs'] : null;
  const out = new Map<string, ExternalStatus | Error>();
  if (typeof jobs !== 'object' || jobs === null) {
    return out;
  }
  for (const id of ids) {
    const job = (jobs as Record<string, unknown>)[id];
    if (typeof job !== 'object' || job === null) {
      continue;
    }
    try {
      out.set(id, pbsJobStatus(job as Record<string, unknown>));
    } catch (e) {
      out.set(id, e instanceof Error ? e : new Error(String(e)));
    }
  }
  return out;
}

function pbsJobStatus(job: Record<string, unknown>): ExternalStatus {
  const state = job['job_state'];
  const time = (key: string): number | null =>
    typeof job[key] === 'string' ? parsePbsTime(job[key]) : null;
  switch (state) {
    case 'Q':
    case 'H':
    case 'W':
      return { kind: 'queued' };
    case 'R':
    case 'E':
      return { kind: 'running' };
    case 'F': {
      const endedAt = time('mtime');
      if (endedAt === null) {
        throw new HqError('HQ_ALLOCATION', 'Missing time key mtime in PBS');
      }
      return {
        kind: job['Exit_status'] === 0 ? 'finished' : 'failed',
        startedAt: time('stime'),
        endedAt,
      };
    }
    default:
      throw new HqError('HQ_ALLOCATION', `Unknown PBS job status ${String(state)}`);
  }
}

/** `Key=Value` pairs of `scontrol show job` output. */
export function scontrolItems(text: string): Map<string, string> {
  const items = new Map<string, string>();
  for (const token of text.split(/\s+/)) {
    const eq = token.indexOf('=');
    if (eq > 0) {
      items.set(token.slice(0, eq), token.slice(eq + 1));
    }
  }
  return items;
}

export function parseSlurmStatus(stdout: string): ExternalStatus {
  const items = scontrolItems(stdout);
  const get = (key: string): string => {
    const value = items.get(key);
    if (value === undefined) {
      throw new HqError('HQ_ALLOCATION', `Missing key ${key} in Slurm scontrol output`);
    }
    return value;
  };
  const state = get('JobState');
  switch (state) {
    case 'PENDING':
    case 'CONFIGURING':
    case 'REQUEUED':
    case 'SUSPENDED':
      return { kind: 'queued' };
    case 'RUNNING':
    case 'COMPLETING':
      return { kind: 'running' };
    default: {
      const ended =
        /^(COMPLETED|CANCELLED|FAILED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE)$/;
      if (!ended.test(state)) {
        throw new HqError('HQ_ALLOCATION', `Unknown Slurm job state ${state}`);
      }
      const start = items.get('StartTime');
      const startedAt =
        start === undefined || !/^\d{4}-/.test(start) ? null : parseSlurmTime(start);
      return {
        kind: state === 'COMPLETED' || state === 'TIMEOUT' ? 'finished' : 'failed',
        startedAt,
        endedAt: parseSlurmTime(get('EndTime')),
      };
    }
  }
}

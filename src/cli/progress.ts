/** `hq job progress` and `hq submit --progress`: one redrawn line until the jobs end. */
import type { IdSelector } from '../common/id-set.js';
import type { ClientSession } from '../client/session.js';
import type { JobInfo } from '../transport/messages.js';
import type { CommandContext } from './context.js';
import { writeOut } from './output.js';
import { infoStatus, progressBar } from './render.js';

const PROGRESS_POLL_MS = 250;
const BAR_WIDTH = 40;

function isDone(j: JobInfo): boolean {
  const s = infoStatus(j);
  return s !== 'waiting' && s !== 'running' && !j.isOpen;
}

export function progressLine(jobs: JobInfo[]): string {
  let total = 0;
  let running = 0;
  let finished = 0;
  let failed = 0;
  let canceled = 0;
  let aborted = 0;
  for (const j of jobs) {
    total += j.nTasks;
    running += j.counters.running;
    finished += j.counters.finished;
    failed += j.counters.failed;
    canceled += j.counters.canceled;
    aborted += j.counters.aborted;
  }
  const done = finished + failed + canceled + aborted;
  const bar = progressBar(
    {
      id: 0,
      name: '',
      nTasks: total,
      counters: { running, finished, failed, canceled, aborted },
      isOpen: false,
      cancelReason: null,
    },
    BAR_WIDTH,
  );
  const parts: string[] = [];
  for (const [n, name] of [
    [running, 'RUNNING'],
    [finished, 'FINISHED'],
    [failed, 'FAILED'],
    [canceled, 'CANCELED'],
    [aborted, 'ABORTED'],
  ] as const) {
    if (n > 0) {
      parts.push(`${n} ${name}`);
    }
  }
  const doneJobs = jobs.filter(isDone).length;
  return `${bar} ${doneJobs}/${jobs.length} jobs, ${done}/${total} tasks${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

export async function waitWithProgress(
  session: ClientSession,
  ctx: CommandContext,
  selector: IdSelector,
): Promise<void> {
  const tty = process.stdout.isTTY === true;
  for (;;) {
    const { jobs } = await session.call('job-info', { selector, withTasks: false });
    const infos = jobs.map((j) => j.info);
    const finished = infos.every(isDone);
    if (ctx.mode === 'cli' && (tty || finished)) {
      writeOut(`${tty ? '\r' : ''}${progressLine(infos)}${finished ? '\n' : ''}`);
    }
    if (finished) {
      return;
    }
    await new Promise((r) => setTimeout(r, PROGRESS_POLL_MS));
  }
}

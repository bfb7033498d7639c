/** The cli table of `hq task list`. */
import { logger } from '../common/log.js';
import type { JobDetail, TaskInfo } from '../transport/messages.js';
import { writeOut } from './output.js';
import { taskMakespan, truncateError, type RenderContext, type WorkerNames } from './render.js';
import { renderHorizontalTable, type Cell } from './table.js';

const log = logger('hq::client');
const ERROR_TRUNCATE_CHARS = 16;

export function renderTaskList(
  ctx: RenderContext,
  jobs: { job: JobDetail; tasks: TaskInfo[] }[],
  names: WorkerNames,
  verbose: boolean,
): void {
  const multi = jobs.length > 1;
  let truncated = false;
  const rows: Cell[][] = [];
  for (const { job, tasks } of jobs) {
    for (const t of tasks) {
      let error: Cell = '';
      if (t.state === 'failed') {
        const e = verbose
          ? { text: t.error ?? '', truncated: false }
          : truncateError(t.error ?? '', ERROR_TRUNCATE_CHARS);
        truncated ||= e.truncated;
        error = { text: e.text, style: { color: 'red' } };
      }
      const row: Cell[] = multi ? [{ text: String(job.info.id), justify: 'right' }] : [];
      row.push(
        { text: String(t.id), justify: 'right' },
        t.state.toUpperCase(),
        t.startedAt === null ? '' : t.workers.map((w) => names.get(w) ?? 'N/A').join('\n'),
        taskMakespan(t),
        error,
      );
      rows.push(row);
    }
  }
  const titles = multi ? ['Job ID'] : [];
  titles.push('Task ID', 'State', 'Worker', 'Makespan', 'Error');
  const header: Cell[] = titles.map((text) => ({ text, style: { bold: true } }));
  writeOut(renderHorizontalTable(header, rows, ctx.colors));
  if (truncated) {
    log.info('An error message was truncated. Use -v to display the full error.');
  }
}

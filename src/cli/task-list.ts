/** The cli table of `hq task list`. */
import { formatHumanDuration } from '../common/duration.js';
import type { JobDetail, TaskInfo } from '../transport/messages.js';
import { writeOut } from './output.js';
import type { RenderContext, WorkerNames } from './render.js';
import { renderHorizontalTable, type Cell } from './table.js';

const ERROR_TRUNCATE_CHARS = 16;

export function renderTaskList(
  ctx: RenderContext,
  _job: JobDetail,
  tasks: TaskInfo[],
  names: WorkerNames,
): void {
  const rows: Cell[][] = tasks.map((t) => {
    const error = t.error ?? '';
    const chars = [...error];
    return [
      String(t.id),
      t.state.toUpperCase(),
      t.startedAt === null ? '' : t.workers.map((w) => names.get(w) ?? 'N/A').join('\n'),
      t.startedAt === null ? '' : formatHumanDuration((t.finishedAt ?? Date.now()) - t.startedAt),
      chars.length > ERROR_TRUNCATE_CHARS
        ? `${chars.slice(0, ERROR_TRUNCATE_CHARS).join('')}...`
        : error,
    ];
  });
  const header: Cell[] = ['Task ID', 'State', 'Worker', 'Makespan', 'Error'].map((text) => ({
    text,
    style: { bold: true },
  }));
  writeOut(renderHorizontalTable(header, rows, ctx.colors));
}

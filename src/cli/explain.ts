/** `hq task explain`: why a task can or cannot run on each worker. */
import { formatHumanDuration } from '../common/duration.js';
import { formatIdSet } from '../common/id-set.js';
import { formatAmount } from '../common/resources.js';
import type { ExplainItem, TaskExplanation } from '../transport/messages.js';
import type { RenderContext } from './render.js';
import { printJson, printLine, writeOut } from './output.js';
import { renderHorizontalTable, type Cell } from './table.js';

function isBlocking(item: ExplainItem): boolean {
  switch (item.kind) {
    case 'time':
      return item.remainingMs !== null && item.minTimeMs > item.remainingMs;
    case 'resources':
      return item.request > item.worker;
    case 'group':
      return item.nNodes > item.groupSize;
  }
}

function serdeDuration(ms: number): { nanos: number; secs: number } {
  const secs = Math.floor(ms / 1000);
  return { nanos: Math.round((ms - secs * 1000) * 1e6), secs };
}

function itemToJson(item: ExplainItem): unknown {
  switch (item.kind) {
    case 'time':
      return {
        Time: {
          min_time: serdeDuration(item.minTimeMs),
          remaining_time: item.remainingMs === null ? null : serdeDuration(item.remainingMs),
        },
      };
    case 'resources':
      return {
        Resources: {
          request_amount: item.request,
          resource: item.resource,
          worker_amount: item.worker,
        },
      };
    case 'group':
      return { WorkerGroup: { group_size: item.groupSize, n_nodes: item.nNodes } };
  }
}

function itemCells(item: ExplainItem): [string, string, string] {
  switch (item.kind) {
    case 'time':
      return [
        'time',
        item.remainingMs === null ? 'unknown' : formatHumanDuration(item.remainingMs),
        formatHumanDuration(item.minTimeMs),
      ];
    case 'resources':
      return [item.resource, formatAmount(item.worker), formatAmount(item.request)];
    case 'group':
      return ['nodes', `group size ${item.groupSize}`, String(item.nNodes)];
  }
}

export function printExplanation(
  ctx: RenderContext,
  jobId: number,
  taskId: number,
  e: TaskExplanation,
): void {
  if (ctx.mode === 'json') {
    printJson({
      explanation: {
        n_task_deps: e.nTaskDeps,
        n_waiting_deps: e.nWaitingDeps,
        workers: e.workers.map((w) => ({
          variants: w.variants.map((v) => v.map(itemToJson)),
          worker_id: w.workerId,
        })),
      },
      task_id: { job_id: jobId, job_task_id: taskId },
    });
    return;
  }
  if (ctx.mode === 'quiet') {
    return; // upstream's quiet mode prints nothing here
  }
  const id = `${jobId}@${taskId}`;
  if (e.nTaskDeps === 0) {
    printLine(`Task ${id} is ready to run because it has no dependencies.`);
  } else if (e.nWaitingDeps === e.nTaskDeps) {
    printLine(
      `Task ${id} is ready to run because its all ${e.nTaskDeps} dependencies are finished.`,
    );
  } else {
    printLine(
      `Task ${id} is not ready to run, because ${e.nWaitingDeps}/${e.nTaskDeps} dependencies are not finished.`,
    );
  }
  const enabled = (v: ExplainItem[]): boolean => !v.some(isBlocking);
  const runnable = e.workers.filter((w) => w.variants.some(enabled)).map((w) => w.workerId);
  if (runnable.length === 0) {
    printLine('There is no worker where the task can run.');
  } else {
    printLine(
      `The task can run on ${runnable.length} ${runnable.length === 1 ? 'worker' : 'workers'}: ${formatIdSet(runnable)}`,
    );
  }
  if (e.workers.length === 0) {
    return;
  }
  const rows: Cell[][] = [];
  for (const w of e.workers) {
    const n = w.variants.length;
    const ok = w.variants.filter(enabled).length;
    const canRun = ok === 0 ? 'No' : n === 1 ? 'Yes' : `Yes (${ok}/${n})`;
    let first = true;
    w.variants.forEach((variant, i) => {
      if (variant.length === 0) {
        return;
      }
      const cells = variant.map(itemCells);
      rows.push([
        first ? String(w.workerId) : '',
        first ? canRun : '',
        String(i),
        cells.map((c) => c[0]).join('\n'),
        cells.map((c) => c[1]).join('\n'),
        cells.map((c) => c[2]).join('\n'),
      ]);
      first = false;
    });
    if (first) {
      rows.push([String(w.workerId), canRun, '', '', '', '']);
    }
  }
  writeOut(
    renderHorizontalTable(
      ['Worker Id', 'Runnable', 'Variant', 'Type', 'Provides', 'Request'],
      rows,
      ctx.colors,
    ),
  );
}

/** Server events for the unit tests of the things that consume them (state, dashboard). */
import type { ServerEvent } from '../../src/server/events.js';
import type { TaskDesc } from '../../src/transport/messages.js';

/** A job of `count` array tasks from `start`, described by `desc`. */
export function arrayJob(
  job: number,
  start: number,
  count: number,
  desc: TaskDesc,
  closedJob = true,
): ServerEvent {
  return {
    type: 'job-created',
    job,
    closedJob,
    name: `job${job}`,
    maxFails: null,
    submit: {
      kind: 'array',
      ids: [{ start, count, step: 1 }],
      autoIds: false,
      entries: null,
      taskDesc: desc,
      submitDir: '/tmp',
    },
  };
}

export function started(jobId: number, taskId: number, worker = 1, instance = 0): ServerEvent {
  return { type: 'task-started', jobId, taskId, instance, workers: [worker], variant: 0 };
}

/**
 * Server events as `hq journal export/replay/stream` print them: one JSON object per line,
 * `{"event": {...}, "time": "<RFC 3339>"}`, in upstream's shapes (field names, serde variant
 * names, floats that stay floats). Internal kinds never reach this module.
 */
import { allocRequestToJson, descriptorToJson, type ResourceRequest } from '../common/resources.js';
import type { ServerEvent, TimedEvent } from '../server/events.js';
import type {
  QueueParams,
  SubmitDesc,
  WorkerConfiguration,
  WorkerLostReason,
} from '../transport/messages.js';
import type { HwState } from '../worker/hw-monitor.js';
import { float, toCompactJson } from './output.js';

const LOST_REASON: Record<WorkerLostReason, string> = {
  stopped: 'Stopped',
  'connection-lost': 'ConnectionLost',
  'heartbeat-lost': 'HeartbeatLost',
  'idle-timeout': 'IdleTimeout',
  'time-limit': 'TimeLimitReached',
};

function duration(ms: number | null): unknown {
  return ms === null ? null : { secs: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

function configurationJson(c: WorkerConfiguration): unknown {
  return {
    resources: descriptorToJson(c.resources),
    listen_address: c.listenAddress,
    hostname: c.hostname,
    group: c.group,
    work_dir: c.workDir,
    heartbeat_interval: duration(c.heartbeatIntervalMs),
    overview_configuration: {
      send_interval: duration(c.overviewIntervalMs),
      gpu_families: [],
    },
    idle_timeout: duration(c.idleTimeoutMs),
    time_limit: duration(c.timeLimitMs),
    on_server_lost: c.onServerLost === 'stop' ? 'Stop' : 'FinishRunning',
    min_utilization: float(c.minUtilization),
    extra:
      c.manager === null
        ? {}
        : {
            JobManager: JSON.stringify({ manager: c.manager.kind, allocation_id: c.manager.jobId }),
          },
  };
}

function resourcesJson(variants: ResourceRequest[]): unknown {
  return {
    variants: variants.map((rq) => ({
      n_nodes: rq.nNodes,
      min_time: duration(rq.minTimeMs),
      resources: rq.resources.map((e) => ({
        resource: e.resource,
        policy: allocRequestToJson(e.request),
      })),
    })),
  };
}

function crashLimitJson(limit: number | 'never-restart' | 'unlimited'): unknown {
  return limit === 'never-restart' ? 'NeverRestart' : limit === 'unlimited' ? 'Unlimited' : limit;
}

function submitJson(submit: SubmitDesc): unknown {
  if (submit.kind === 'graph') {
    return {
      submit_dir: submit.submitDir,
      stream_path: submit.tasks[0]?.taskDesc.streamPath ?? null,
      task_desc: { n_tasks: submit.tasks.length },
    };
  }
  const d = submit.taskDesc;
  return {
    submit_dir: submit.submitDir,
    stream_path: d.streamPath,
    task_desc: {
      ids: { ranges: submit.ids.map((r) => ({ start: r.start, count: r.count, step: r.step })) },
      resources: resourcesJson(d.resources),
      time_limit: duration(d.timeLimitMs),
      priority: d.priority,
      crash_limit: crashLimitJson(d.crashLimit),
    },
  };
}

function queueParamsJson(p: QueueParams): unknown {
  return {
    manager: p.manager === 'pbs' ? 'Pbs' : 'Slurm',
    name: p.name,
    backlog: p.backlog,
    max_workers_per_alloc: p.maxWorkersPerAlloc,
    max_worker_count: p.maxWorkerCount,
    timelimit: duration(p.timeLimitMs),
    min_utilization: float(p.minUtilization),
    additional_args: p.additionalArgs,
    worker_args: p.workerArgs,
    idle_timeout: duration(p.idleTimeoutMs),
    worker_start_cmd: p.workerStartCmd,
    worker_stop_cmd: p.workerStopCmd,
    worker_wrap_cmd: p.workerWrapCmd,
  };
}

function hwStateJson(state: HwState): unknown {
  const gpus = (g: HwState['nvidia_gpus']): unknown =>
    g === null
      ? null
      : {
          gpus: g.gpus.map((x) => ({
            id: x.id,
            processor_usage: float(x.processor_usage),
            mem_usage: float(x.mem_usage),
          })),
        };
  return {
    state: {
      cpu_usage: {
        cpu_per_core_percent_usage: state.cpu_usage.cpu_per_core_percent_usage.map(float),
      },
      memory_usage: state.memory_usage,
      network_usage: state.network_usage,
      nvidia_gpus: gpus(state.nvidia_gpus),
      amd_gpus: gpus(state.amd_gpus),
      timestamp: state.timestamp,
    },
  };
}

function taskIdsJson(tasks: { jobId: number; taskId: number }[]): unknown {
  return tasks.map((t) => ({ job_id: t.jobId, job_task_id: t.taskId }));
}

/** Upstream's payload object of an event, or null for internal kinds. */
export function eventPayloadJson(event: ServerEvent): unknown {
  switch (event.type) {
    case 'server-start':
      return { type: event.type, server_uid: event.serverUid };
    case 'server-stop':
      return { type: event.type };
    case 'worker-connected':
      return {
        type: event.type,
        id: event.id,
        configuration: configurationJson(event.configuration),
      };
    case 'worker-lost':
      return { type: event.type, id: event.id, reason: LOST_REASON[event.reason] };
    case 'worker-overview':
      return {
        type: event.type,
        id: event.id,
        'hw-state': event.hwState === null ? null : hwStateJson(event.hwState),
      };
    case 'job-created':
      return {
        type: event.type,
        job: event.job,
        closed_job: event.closedJob,
        job_desc: { name: event.name, max_fails: event.maxFails },
        submit_desc: submitJson(event.submit),
      };
    case 'job-completed':
      return { type: event.type, job: event.job };
    case 'job-open':
      return { type: event.type, job_id: event.job, name: event.name, max_fails: event.maxFails };
    case 'job-close':
      return { type: event.type, job_id: event.job };
    case 'job-cancel':
      return { type: event.type, job_id: event.job, reason: event.reason };
    case 'task-started': {
      const out: Record<string, unknown> = {
        type: event.type,
        job: event.jobId,
        task: event.taskId,
        instance: event.instance,
      };
      if (event.workers.length === 1) {
        out['worker'] = event.workers[0];
      } else {
        out['workers'] = event.workers;
      }
      if (event.variant > 0) {
        out['variant'] = event.variant;
      }
      return out;
    }
    case 'task-finished':
      return { type: event.type, job: event.jobId, task: event.taskId };
    case 'task-failed':
      return { type: event.type, job: event.jobId, task: event.taskId, error: event.error };
    case 'task-canceled':
    case 'task-aborted':
      return { type: event.type, tasks: taskIdsJson(event.tasks) };
    case 'autoalloc-queue-created':
      return { type: event.type, 'queue-id': event.queueId, params: queueParamsJson(event.params) };
    case 'autoalloc-queue-removed':
      return { type: event.type, 'queue-id': event.queueId };
    case 'autoalloc-allocation-queued':
      return {
        type: event.type,
        'queue-id': event.queueId,
        'allocation-id': event.allocationId,
        'worker-count': event.workerCount,
      };
    case 'autoalloc-allocation-started':
    case 'autoalloc-allocation-finished':
      return { type: event.type, 'queue-id': event.queueId, 'allocation-id': event.allocationId };
    case 'task-notify':
      return {
        task_id: { job_id: event.jobId, job_task_id: event.taskId },
        worker_id: event.workerId,
        message: [...Buffer.from(event.message)],
      };
    case 'job-idle':
      return { job_id: event.job };
    case 'task-restarted':
    case 'tasks-sent':
    case 'job-forgotten':
    case 'autoalloc-queue-paused':
    case 'autoalloc-queue-resumed':
    case 'autoalloc-queue-resources':
    case 'id-counters':
      return null;
  }
}

/** The NDJSON line of an event (without the newline), or null for internal kinds. */
export function formatEventLine(record: TimedEvent): string | null {
  const payload = eventPayloadJson(record.event);
  if (payload === null) {
    return null;
  }
  return toCompactJson({ event: payload, time: new Date(record.time).toISOString() });
}

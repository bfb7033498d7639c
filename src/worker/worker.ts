/**
 * `hq worker start`: connects to the server, registers its resources, runs the tasks it is
 * given and reports their ends in batches. Owns its connection, its timers and every task
 * process; `shutdown` is the one way out and stops all of them in order.
 */
import * as fs from 'node:fs';
import { isIP } from 'node:net';
import * as path from 'node:path';
import { HqError, errorMessage } from '../common/errors.js';
import { logger } from '../common/log.js';
import { fillPlaceholders, resolveTaskPaths } from '../common/placeholders.js';
import {
  descriptorKindSize,
  FRACTIONS_PER_UNIT,
  formatAllocRequest,
  resourceEnvName,
  type ResourceDescriptor,
  type ResourceRequestEntry,
} from '../common/resources.js';
import { ACCESS_FILE, instanceDir, readAccessFile } from '../common/server-dir.js';
import { hqPath } from '../common/self.js';
import { VERSION } from '../common/version.js';
import { connect, type Connection } from '../transport/connection.js';
import {
  PROTOCOL_VERSION,
  type ComputeTask,
  type ManagerKind,
  type OverviewTask,
  type ServerLostPolicy,
  type ServerToWorker,
  type TaskRef,
  type TaskUpdate,
  type WorkerConfiguration,
  type WorkerLostReason,
  type WorkerTaskShared,
} from '../transport/messages.js';
import { ResourceAllocator, type Allocation } from './allocator.js';
import { STOP_GRACE_MS, TaskProcess, type TaskOutcome } from './task-process.js';
import { StreamRegistry, type StreamWriter } from './stream-writer.js';
import { NotifyServer } from './notify.js';
import { Launcher } from './launcher.js';
import { allowedCpus } from './hwdetect.js';
import { HwMonitor } from './hw-monitor.js';

const log = logger('hq::worker');

const CONNECT_ATTEMPTS = 20;
const CONNECT_RETRY_MS = 2000;
const REGISTER_TIMEOUT_MS = 15_000;
/** A server silent for this many heartbeats (and at least SERVER_SILENCE_MIN_MS) is lost. */
const SERVER_SILENCE_HEARTBEATS = 10;
const SERVER_SILENCE_MIN_MS = 10_000;
const EXIT_WAIT_MS = 5000;

/** How long a busy worker gathers task updates before sending them (see pushUpdate). */
const UPDATE_FLUSH_DELAY_MS = 2;

/** Launcher helpers per worker: two per CPU, at most this many. */
const MAX_LAUNCHERS = 4;

function launcherCount(resources: ResourceDescriptor): number {
  const cpus = resources.resources.find((r) => r.name === 'cpus');
  const n = cpus === undefined ? 1 : Math.floor(descriptorKindSize(cpus) / FRACTIONS_PER_UNIT);
  return Math.min(MAX_LAUNCHERS, Math.max(1, 2 * n));
}

export interface WorkerOptions {
  serverDir: string;
  resources: ResourceDescriptor;
  hostname: string;
  workDir: string;
  group: string;
  onServerLost: ServerLostPolicy;
  heartbeatMs: number;
  idleTimeoutMs: number | null;
  timeLimitMs: number | null;
  minUtilization: number;
  overviewIntervalMs: number | null;
  manager: { kind: ManagerKind; jobId: string } | null;
  /**
   * Benchmark switch: every task is reported running and finished at once and nothing is
   * started, so a run measures the server, the protocol and this loop alone.
   */
  zeroWorker: boolean;
  /** Called once registered, with the id and the configuration the server accepted. */
  onRegistered: (workerId: number, configuration: WorkerConfiguration, startedAt: number) => void;
}

interface RunningTask {
  ref: TaskRef;
  notifyToken: string | null;
  /** The `--stream` dir when the task's stdio is piped into it. */
  streamDir: string | null;
  streamError: string | null;
  process: TaskProcess | null;
  allocation: Allocation;
  taskDir: string | null;
  removeOnFinish: string[];
}

function taskKey(jobId: number, taskId: number): string {
  return `${jobId}@${taskId}`;
}

async function connectWithRetry(
  host: string,
  port: number,
  key: Buffer,
  accessFile: string,
): Promise<Connection> {
  let lastError: unknown = null;
  for (let attempt = 1; attempt <= CONNECT_ATTEMPTS; attempt++) {
    try {
      return await connect(host, port, 'worker', key);
    } catch (e) {
      lastError = e;
      const text = errorMessage(e);
      // Only a refused or unreachable port is worth another try; a bad key never gets better.
      if (!/ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|timed out/.test(text)) {
        break;
      }
      log.warn(`cannot connect to the server (attempt ${attempt}/${CONNECT_ATTEMPTS}): ${text}`);
      await new Promise((r) => setTimeout(r, CONNECT_RETRY_MS));
    }
  }
  if (lastError instanceof HqError && lastError.code === 'HQ_KEY_MISMATCH') {
    throw new HqError(
      'HQ_KEY_MISMATCH',
      `The server at ${host}:${port} does not accept the worker key of ${accessFile}: that file belongs to another server, or the server was started again with new keys`,
    );
  }
  throw new HqError('HQ_CONNECTION', `Cannot connect to the server: ${errorMessage(lastError)}`);
}

export class Worker {
  private connection: Connection | null = null;
  private allocator: ResourceAllocator;
  private readonly tasks = new Map<string, RunningTask>();
  private readonly waiting: { task: ComputeTask; shared: WorkerTaskShared }[] = [];
  private updates: TaskUpdate[] = [];
  private flushQueued = false;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private lifeTimer: NodeJS.Timeout | null = null;
  private overviewTimer: NodeJS.Timeout | null = null;
  /** Bumped whenever the overview interval changes: an older sample loop stops. */
  private overviewGeneration = 0;
  private watchedOverviewMs: number | null = null;
  private hwMonitor: HwMonitor | null = null;
  private idleTimeoutMs: number | null;
  private serverUid = '';
  private workerId = 0;
  private exiting = false;
  private finishingRunning = false;
  private exitResolve: ((code: number) => void) | null = null;
  private readonly exitCode: Promise<number>;
  private readonly hqPath = hqPath();
  private streams: StreamRegistry | null = null;
  private notify: NotifyServer | null = null;
  /** Starts programs cheaply (streamed too, with the C helper); null: spawn. Closed at exit. */
  private launcher: Launcher | null = null;
  /** The worker's own environment, read once: every `process.env` access is a getenv call. */
  private readonly baseEnv: Record<string, string> = Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined),
  );
  /** Held by a multi-node task that runs elsewhere: not idle. */
  private reserved = false;
  /** When the server was last heard from (it answers every heartbeat). */
  private lastHeardMs = Date.now();
  private lastHeartbeatMs = Date.now();

  private readonly options: WorkerOptions;

  constructor(options: WorkerOptions) {
    this.options = options;
    const allowed = allowedCpus();
    this.allocator = new ResourceAllocator(
      options.resources,
      allowed === null ? {} : { usableCpus: new Set([...allowed].map(String)) },
    );
    this.idleTimeoutMs = options.idleTimeoutMs;
    this.exitCode = new Promise((resolve) => {
      this.exitResolve = resolve;
    });
  }

  /** Runs until the worker stops; resolves with the process exit code. */
  async run(): Promise<number> {
    const dir = instanceDir(this.options.serverDir);
    const access = readAccessFile(path.join(dir, ACCESS_FILE));
    if (access.worker === null) {
      throw new HqError('HQ_ACCESS_FILE', `The access file in ${dir} has no worker section`);
    }
    fs.mkdirSync(this.options.workDir, { recursive: true });
    const { host, port, secret_key: key } = access.worker;
    const connection = await connectWithRetry(
      host,
      port,
      Buffer.from(key, 'hex'),
      path.join(dir, ACCESS_FILE),
    );
    this.connection = connection;
    const configuration: WorkerConfiguration = {
      resources: this.options.resources,
      hostname: this.options.hostname,
      listenAddress: `${this.options.hostname}:0`,
      workDir: this.options.workDir,
      group: this.options.group,
      heartbeatIntervalMs: this.options.heartbeatMs,
      idleTimeoutMs: this.options.idleTimeoutMs,
      timeLimitMs: this.options.timeLimitMs,
      onServerLost: this.options.onServerLost,
      minUtilization: this.options.minUtilization,
      overviewIntervalMs: this.options.overviewIntervalMs,
      manager: this.options.manager,
      pid: process.pid,
    };
    await this.register(connection, configuration);
    this.lastHeardMs = Date.now();
    connection.listen((raw) => {
      this.lastHeardMs = Date.now();
      this.onMessage(raw as ServerToWorker);
    });
    connection.onClose(() => this.onServerLost());
    this.lastHeartbeatMs = Date.now();
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.options.heartbeatMs);
    if (this.options.timeLimitMs !== null) {
      this.lifeTimer = setTimeout(() => {
        log.info('worker time limit reached');
        this.announceAndStop('time-limit');
      }, this.options.timeLimitMs);
    }
    this.resetIdleTimer();
    this.restartOverviews();
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        log.info(`received ${signal}, stopping`);
        void this.shutdown(0);
      });
    }
    return this.exitCode;
  }

  /**
   * Sends hardware state at the shorter of `--overview-interval` and what a watching client
   * asked for; a sample is taken only after the last one was sent.
   */
  private restartOverviews(): void {
    if (this.overviewTimer !== null) {
      clearTimeout(this.overviewTimer);
      this.overviewTimer = null;
    }
    const own = this.options.overviewIntervalMs;
    const intervals = [own, this.watchedOverviewMs].filter(
      (ms): ms is number => ms !== null && ms > 0,
    );
    if (intervals.length === 0 || this.exiting) {
      return;
    }
    const intervalMs = Math.min(...intervals);
    if (this.hwMonitor === null) {
      const names = new Set(this.options.resources.resources.map((r) => r.name));
      this.hwMonitor = new HwMonitor({
        nvidia: names.has('gpus/nvidia'),
        amd: names.has('gpus/amd'),
      });
    }
    const monitor = this.hwMonitor;
    const generation = ++this.overviewGeneration;
    const next = (): void => {
      this.overviewTimer = setTimeout(() => {
        monitor.sample().then(
          (hwState) => {
            if (!this.exiting && generation === this.overviewGeneration) {
              this.connection?.send({ op: 'overview', hwState, tasks: this.overviewTasks() });
              next();
            }
          },
          () => {
            if (generation === this.overviewGeneration) {
              next();
            }
          },
        );
      }, intervalMs);
    };
    next();
  }

  /** The running tasks and the CPU ids each holds (labels that are not integers are left out). */
  private overviewTasks(): OverviewTask[] {
    const out: OverviewTask[] = [];
    for (const t of this.tasks.values()) {
      const labels = t.allocation.entries.find((e) => e.name === 'cpus')?.labels ?? [];
      const cpus = labels.map(Number).filter((n) => Number.isInteger(n) && n >= 0);
      out.push([t.ref.jobId, t.ref.taskId, cpus]);
    }
    return out;
  }

  private register(connection: Connection, configuration: WorkerConfiguration): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        connection.close('registration timeout');
        reject(new HqError('HQ_CONNECTION', 'The server did not answer the registration'));
      }, REGISTER_TIMEOUT_MS);
      const onClose = (): void => {
        clearTimeout(timer);
        reject(
          new HqError('HQ_CONNECTION', 'The server closed the connection during registration'),
        );
      };
      connection.onClose(onClose);
      connection.listen((raw) => {
        const m = raw as ServerToWorker;
        if (m.op !== 'registered') {
          return;
        }
        clearTimeout(timer);
        this.workerId = m.workerId;
        this.serverUid = m.serverUid;
        this.idleTimeoutMs ??= m.idleTimeoutMs;
        log.info(`worker ${m.workerId} registered`);
        if (!this.options.zeroWorker) {
          // A zero worker starts nothing, so it needs no helper process and no notify socket.
          this.streams = new StreamRegistry(m.serverUid, m.workerId);
          this.launcher = Launcher.create(launcherCount(this.options.resources));
          this.notify = new NotifyServer(this.options.workDir, (task, message) =>
            this.connection?.send({
              op: 'notify',
              jobId: task.jobId,
              taskId: task.taskId,
              message,
            }),
          );
        }
        this.options.onRegistered(m.workerId, configuration, Date.now());
        resolve();
      });
      connection.send({
        op: 'register',
        protocol: PROTOCOL_VERSION,
        version: VERSION,
        configuration,
      });
    });
  }

  private onMessage(m: ServerToWorker): void {
    if (this.exiting) {
      return;
    }
    switch (m.op) {
      case 'compute':
        if (this.options.zeroWorker) {
          this.completeAtOnce(m.tasks);
          return;
        }
        for (const task of m.tasks) {
          const shared = m.shared[task.shared];
          if (shared !== undefined) {
            this.waiting.push({ task, shared });
          }
        }
        this.startWaiting();
        return;
      case 'cancel':
        for (const ref of m.tasks) {
          this.cancelTask(ref);
        }
        return;
      case 'reservation':
        this.reserved = m.reserved;
        this.resetIdleTimer();
        return;
      case 'overview-interval':
        this.watchedOverviewMs = m.intervalMs;
        this.restartOverviews();
        return;
      case 'stop':
        log.info('stop requested by the server');
        void this.shutdown(0);
        return;
      case 'registered':
        return;
    }
  }

  /**
   * Zero worker: both updates of every task go into the pending batch, so a whole `compute`
   * frame is answered by one `task-updates` frame, as a batch of very short real tasks would be.
   * Resources are not allocated: nothing holds them even for a moment.
   */
  private completeAtOnce(tasks: ComputeTask[]): void {
    const at = Date.now();
    // Literal objects, not spreads of one ref: this loop is most of a zero worker's own CPU.
    for (const { jobId, taskId, instance } of tasks) {
      this.pushUpdate({ jobId, taskId, instance, state: 'running', at });
      this.pushUpdate({ jobId, taskId, instance, state: 'finished', at });
    }
    this.resetIdleTimer();
  }

  private resetIdleTimer(): void {
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
    if (
      this.idleTimeoutMs === null ||
      this.reserved ||
      this.tasks.size > 0 ||
      this.waiting.length > 0
    ) {
      return;
    }
    this.idleTimer = setTimeout(() => {
      log.info('idle timeout reached');
      this.announceAndStop('idle-timeout');
    }, this.idleTimeoutMs);
  }

  private announceAndStop(reason: WorkerLostReason): void {
    this.connection?.send({ op: 'stopping', reason });
    void this.shutdown(0);
  }

  private cancelTask(ref: TaskRef): void {
    const index = this.waiting.findIndex(
      (w) => w.task.jobId === ref.jobId && w.task.taskId === ref.taskId,
    );
    if (index >= 0) {
      this.waiting.splice(index, 1);
      return;
    }
    const running = this.tasks.get(taskKey(ref.jobId, ref.taskId));
    if (running && running.ref.instance === ref.instance) {
      // The server already counts it canceled; no update is sent for it.
      this.tasks.delete(taskKey(ref.jobId, ref.taskId));
      running.process?.stop(null);
      void running.process?.outcome.then(() => this.releaseTask(running));
    }
  }

  /**
   * Starts every received task whose resources can be picked now. One may have to wait: the
   * server's view is a moment ahead of ours (a canceled task still being killed), or a strict
   * policy (`compact!`) waits for a better placement. It is retried when something ends; the
   * tasks behind it are not held up.
   */
  private startWaiting(): void {
    if (this.finishingRunning) {
      return;
    }
    const still: typeof this.waiting = [];
    for (const next of this.waiting.splice(0)) {
      const request = requestOf(next.shared, next.task.variant);
      const allocation = this.allocator.allocate(request);
      if (allocation === null) {
        still.push(next);
      } else {
        this.startTask(next.task, next.shared, allocation, request);
      }
    }
    this.waiting.push(...still);
    this.resetIdleTimer();
  }

  private startTask(
    task: ComputeTask,
    shared: WorkerTaskShared,
    allocation: Allocation,
    request: ResourceRequestEntry[],
  ): void {
    const desc = shared.taskDesc;
    const program = desc.program;
    const ref: TaskRef = { jobId: task.jobId, taskId: task.taskId, instance: task.instance };
    const values = {
      JOB_ID: String(task.jobId),
      TASK_ID: String(task.taskId),
      INSTANCE_ID: String(task.instance),
      SUBMIT_DIR: shared.submitDir,
      SERVER_UID: this.serverUid,
    };
    const paths = resolveTaskPaths(
      {
        cwd: program.cwd,
        stdout: program.stdout.kind === 'file' ? program.stdout.path : null,
        stderr: program.stderr.kind === 'file' ? program.stderr.path : null,
      },
      values,
    );
    const env: Record<string, string> = { ...this.baseEnv, ...program.env };
    env['HQ_JOB_ID'] = values.JOB_ID;
    env['HQ_TASK_ID'] = values.TASK_ID;
    env['HQ_INSTANCE_ID'] = values.INSTANCE_ID;
    env['HQ_SUBMIT_DIR'] = shared.submitDir;
    env['HQ'] = this.hqPath;
    if (desc.resources.length > 1) {
      env['HQ_RESOURCE_VARIANT'] = String(task.variant);
    }
    const access = this.notify?.register({ jobId: task.jobId, taskId: task.taskId }) ?? null;
    if (access !== null) {
      env['HQ_ACCESS_KEY'] = access.key;
    }
    if (task.entry !== null) {
      env['HQ_ENTRY'] = task.entry;
    }
    for (const entry of allocation.entries) {
      const name = resourceEnvName(entry.name);
      const requested = request.find((r) => r.resource === entry.name);
      if (requested) {
        env[`HQ_RESOURCE_REQUEST_${name}`] = formatAllocRequest(requested.request);
      }
      if (entry.labels !== null) {
        const labels = entry.labels.join(',');
        env[`HQ_RESOURCE_VALUES_${name}`] = labels;
        if (entry.name === 'cpus') {
          env['HQ_CPUS'] = labels;
          if (entry.amount % 10_000 === 0 && program.env['OMP_NUM_THREADS'] === undefined) {
            env['OMP_NUM_THREADS'] = String(entry.amount / 10_000);
          }
        } else if (entry.name === 'gpus/nvidia') {
          env['CUDA_VISIBLE_DEVICES'] = labels;
          env['CUDA_DEVICE_ORDER'] = 'PCI_BUS_ID';
        } else if (entry.name === 'gpus/amd') {
          env['ROCR_VISIBLE_DEVICES'] = labels;
        }
      }
    }
    let taskDir: string | null = null;
    if (desc.taskDir || task.nodes !== null) {
      taskDir = fs.mkdtempSync(path.join(this.options.workDir, 't'));
      env['HQ_TASK_DIR'] = taskDir;
      env['HQ_ERROR_FILENAME'] = path.join(taskDir, 'hq-error');
    }
    if (task.nodes !== null && taskDir !== null) {
      const nodeFile = path.join(taskDir, 'hq-nodefile');
      const hostFile = path.join(taskDir, 'hq-hostfile');
      fs.writeFileSync(nodeFile, task.nodes.map(shortHostname).join('\n') + '\n');
      fs.writeFileSync(hostFile, task.nodes.join('\n') + '\n');
      env['HQ_NODE_FILE'] = nodeFile;
      env['HQ_HOST_FILE'] = hostFile;
      env['HQ_NUM_NODES'] = String(task.nodes.length);
    }
    const removeOnFinish: string[] = [];
    if (program.stdout.kind === 'file' && program.stdout.rmIfFinished && paths.stdout) {
      removeOnFinish.push(paths.stdout);
    }
    if (program.stderr.kind === 'file' && program.stderr.rmIfFinished && paths.stderr) {
      removeOnFinish.push(paths.stderr);
    }
    const piped = program.stdout.kind === 'pipe' || program.stderr.kind === 'pipe';
    const streamDir = piped ? desc.streamPath : null;
    const running: RunningTask = {
      ref,
      notifyToken: access?.token ?? null,
      streamDir,
      streamError: null,
      process: null,
      allocation,
      taskDir,
      removeOnFinish,
    };
    const streams = this.streams;
    // The task's stream file, taken at its first output: all of its output goes to one file.
    let writer: StreamWriter | null = null;
    const streamWriter = (dir: string, registry: StreamRegistry): StreamWriter =>
      (writer ??= registry.writerFor(dir));
    const guard = (f: () => void): void => {
      try {
        f();
      } catch (e) {
        running.streamError ??= errorMessage(e);
      }
    };
    this.tasks.set(taskKey(task.jobId, task.taskId), running);
    let args = program.args.map((a) => fillPlaceholders(a, { ...values, CWD: paths.cwd }));
    if (desc.pinMode !== null) {
      const cpuList = allocation.entries.find((e) => e.name === 'cpus')?.labels?.join(',');
      if (cpuList === undefined || cpuList === '') {
        this.pushUpdate({
          ...ref,
          state: 'failed',
          at: Date.now(),
          error: 'Pinning failed, no CPU ids allocated for task',
        });
        this.tasks.delete(taskKey(task.jobId, task.taskId));
        this.releaseTask(running);
        return;
      }
      if (desc.pinMode === 'taskset') {
        args = ['taskset', '-c', cpuList, ...args];
        env['HQ_PIN'] = 'taskset';
      } else {
        if (program.env['OMP_PROC_BIND'] === undefined) {
          env['OMP_PROC_BIND'] = 'close';
        }
        if (program.env['OMP_PLACES'] === undefined) {
          env['OMP_PLACES'] = `{${cpuList}}`;
        }
        env['HQ_PIN'] = 'omp';
      }
    }
    const processHandle = new TaskProcess({
      args,
      env,
      cwd: paths.cwd,
      stdout: program.stdout,
      stderr: program.stderr,
      stdin: program.stdin,
      stdoutPath: paths.stdout,
      stderrPath: paths.stderr,
      timeLimitMs: desc.timeLimitMs,
      taskDir,
      stdinDir: this.options.workDir,
      launcher: this.launcher,
      onOutput:
        streamDir === null || streams === null
          ? null
          : (channel, data) =>
              guard(() => streams.write(streamWriter(streamDir, streams), ref, channel, data)),
      onOutputEnd:
        streamDir === null || streams === null
          ? null
          : (channel) => guard(() => streams.end(streamWriter(streamDir, streams), ref, channel)),
    });
    running.process = processHandle;
    this.pushUpdate({ ...ref, state: 'running', at: Date.now() });
    void processHandle.outcome.then(async (outcome) => {
      // Finished or failed is reported only once the task's output is on disk.
      const taskWriter = writer;
      if (taskWriter !== null) {
        try {
          await taskWriter.flush();
        } catch (e) {
          running.streamError ??= errorMessage(e);
        }
      }
      if (running.streamError !== null) {
        outcome = { state: 'failed', error: `Streaming: ${running.streamError}` };
      }
      this.onTaskEnd(running, outcome);
    });
  }

  private releaseTask(running: RunningTask): void {
    this.allocator.free(running.allocation);
    if (running.notifyToken !== null) {
      this.notify?.unregister(running.notifyToken);
    }
    if (running.taskDir !== null) {
      fs.rmSync(running.taskDir, { recursive: true, force: true });
    }
    this.afterTaskGone();
  }

  private afterTaskGone(): void {
    if (this.finishingRunning && this.tasks.size === 0) {
      void this.shutdown(1);
      return;
    }
    this.startWaiting();
  }

  private onTaskEnd(running: RunningTask, outcome: TaskOutcome): void {
    const k = taskKey(running.ref.jobId, running.ref.taskId);
    if (this.tasks.get(k) !== running) {
      return; // canceled: already released by cancelTask
    }
    if (this.exiting) {
      // Killed because the worker stops: the server decides what happens to the task.
      return;
    }
    this.tasks.delete(k);
    if (outcome.state === 'finished') {
      for (const file of running.removeOnFinish) {
        fs.rmSync(file, { force: true });
      }
      this.pushUpdate({ ...running.ref, state: 'finished', at: Date.now() });
    } else {
      this.pushUpdate({ ...running.ref, state: 'failed', at: Date.now(), error: outcome.error });
    }
    this.releaseTask(running);
  }

  private pushUpdate(update: TaskUpdate): void {
    this.updates.push(update);
    if (!this.flushQueued) {
      this.flushQueued = true;
      const flush = (): void => {
        this.flushQueued = false;
        const updates = this.updates;
        this.updates = [];
        this.connection?.send({ op: 'task-updates', updates });
      };
      // While tasks still run, more updates are about to follow: wait a moment so that one
      // frame carries them (a short task's `running` and `finished` together, several ends at
      // once). An idle worker reports at once.
      if (this.tasks.size > 0) {
        setTimeout(flush, UPDATE_FLUSH_DELAY_MS);
      } else {
        setImmediate(flush);
      }
    }
  }

  /**
   * Sends a heartbeat and judges the server's silence. A cut network delivers no FIN or RST, so
   * without this a worker would run its tasks for ever after the server gave them to others. The
   * limit is far above the server's own (2 heartbeats + 1 s), so a server that was only frozen
   * for a while keeps its workers; a round after this worker was itself frozen is not judged.
   */
  private heartbeat(): void {
    const connection = this.connection;
    if (connection === null) {
      return;
    }
    const now = Date.now();
    const late = now - this.lastHeartbeatMs > 3 * this.options.heartbeatMs;
    this.lastHeartbeatMs = now;
    const limitMs = Math.max(
      SERVER_SILENCE_HEARTBEATS * this.options.heartbeatMs,
      SERVER_SILENCE_MIN_MS,
    );
    if (!late && now - this.lastHeardMs > limitMs) {
      log.warn(`the server has not answered for ${Math.round((now - this.lastHeardMs) / 1000)} s`);
      connection.close('the server went silent');
      return;
    }
    connection.send({ op: 'heartbeat' });
  }

  private onServerLost(): void {
    if (this.exiting) {
      return;
    }
    log.warn('the connection to the server was lost');
    this.connection = null;
    if (this.options.onServerLost === 'finish-running' && this.tasks.size > 0) {
      log.info(`finishing ${this.tasks.size} running task(s) before exiting`);
      this.finishingRunning = true;
      this.waiting.length = 0;
      if (this.idleTimer) {
        clearTimeout(this.idleTimer);
      }
      return;
    }
    void this.shutdown(1);
  }

  /** Stops every task (SIGINT, then SIGKILL), closes the connection and exits with `code`. */
  private async shutdown(code: number): Promise<void> {
    if (this.exiting) {
      return;
    }
    this.exiting = true;
    for (const timer of [this.heartbeatTimer, this.idleTimer, this.lifeTimer, this.overviewTimer]) {
      if (timer) {
        clearTimeout(timer);
      }
    }
    this.waiting.length = 0;
    const processes = [...this.tasks.values()].flatMap((t) => (t.process ? [t.process] : []));
    for (const p of processes) {
      p.stop(null);
    }
    if (processes.length > 0) {
      const all = Promise.all(processes.map((p) => p.outcome));
      const limit = new Promise((r) => setTimeout(r, Math.max(EXIT_WAIT_MS, STOP_GRACE_MS * 2)));
      await Promise.race([all, limit]);
      for (const p of processes) {
        p.kill();
      }
    }
    await this.streams?.close().catch(() => undefined);
    this.notify?.close();
    this.launcher?.close();
    if (this.connection) {
      await this.connection.flush();
      this.connection.close('worker stopping');
    }
    for (const t of this.tasks.values()) {
      if (t.taskDir !== null) {
        fs.rmSync(t.taskDir, { recursive: true, force: true });
      }
    }
    this.exitResolve?.(code);
  }
}

/** A host name cut at its first dot, unless it is an IP address. */
function shortHostname(host: string): string {
  if (isIP(host) !== 0) {
    return host;
  }
  const dot = host.indexOf('.');
  return dot === -1 ? host : host.slice(0, dot);
}

/** The request a task was scheduled with (its first variant; a default of one CPU). */
function requestOf(shared: WorkerTaskShared, variant: number): ResourceRequestEntry[] {
  const first = shared.taskDesc.resources[variant] ?? shared.taskDesc.resources[0];
  if (first !== undefined && first.nNodes > 0) {
    return [];
  }
  if (first === undefined) {
    return [{ resource: 'cpus', request: { kind: 'amount', amount: 10_000, policy: 'compact' } }];
  }
  return first.resources;
}

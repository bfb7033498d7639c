/**
 * The public TypeScript API of the package (`import { Client, Job } from 'hyperqueue-ts'`):
 * build jobs of program and function tasks, submit them to a server, wait, inspect failures,
 * and run a whole cluster locally. docs/api.md describes it with examples.
 */
export {
  Client,
  SubmittedJob,
  type ClientOptions,
  type JobProgress,
  type JobRef,
  type WaitForJobsOptions,
} from './client.js';
export {
  Job,
  Task,
  TS_DEFAULT_JOB_NAME,
  type Amount,
  type CrashLimit,
  type FunctionOptions,
  type JobOptions,
  type ProgramOptions,
  type ResourceRequest,
  type Stdio,
  type TaskOptions,
} from './job.js';
export {
  NodeEnv,
  TASK_RUNNER,
  taskFunction,
  type NodeEnvOptions,
  type TaskFunction,
  type TaskFunctionRef,
} from './task-function.js';
export {
  LocalCluster,
  hqCommand,
  type LocalClusterOptions,
  type WorkerConfig,
} from './local-cluster.js';
export {
  ClusterError,
  ConnectionError,
  FailedJobsError,
  HqError,
  InvalidJobError,
  JobNotCompletedError,
  ServerNotFoundError,
  VersionMismatchError,
  type FailedTask,
  type HqErrorCode,
} from './api-errors.js';
export type { ApiJob, ApiTask, ApiResourceRequest, ApiStdio, ApiAmount } from './job-spec.js';
export { VERSION } from '../common/version.js';

import itertools
import logging
from typing import Dict, Optional, Sequence

from .common import GenericPath
from .ffi.client import ClientConnection, FailedTaskContext, JobId, TaskFailureMap, TaskId
from .job import HasJobId, Job, SubmittedJob, get_job_id
from .task.function import PythonEnv
from .utils.string import pluralize

MAX_PRINTED_TASKS = 5

JobMap = Dict[JobId, Job]

__all__ = ["Client", "FailedJobsException", "PythonEnv"]


class FailedJobsException(Exception):
    """Raised by `Client.wait_for_jobs` when a task of the awaited jobs failed."""

    def __init__(self, failed_tasks: TaskFailureMap, job_map: JobMap):
        super().__init__(failed_tasks)
        self.failed_tasks = failed_tasks
        self.job_map = job_map

    def task_label(self, job_id: JobId, task_id: TaskId) -> str:
        job = self.job_map.get(job_id)
        task = job.task_by_id(task_id) if job is not None else None
        return task.label if task is not None else str(task_id)

    def __str__(self) -> str:
        lines = []
        for job_id, tasks in self.failed_tasks.items():
            lines.append(f"The following tasks of job `{job_id}` have failed:\n")
            for task_id, ctx in itertools.islice(tasks.items(), MAX_PRINTED_TASKS):
                lines.append(f"Task {self.task_label(job_id, task_id)} (id={task_id}):\n{ctx.error}\n")
                if ctx.cwd or ctx.stdout or ctx.stderr:
                    lines.append("You can find more information here:\n")
                    if ctx.cwd:
                        lines.append(f"Working directory: {ctx.cwd}\n")
                    if ctx.stdout:
                        lines.append(f"Stdout: {ctx.stdout}\n")
                    if ctx.stderr:
                        lines.append(f"Stderr: {ctx.stderr}\n")
        return "".join(lines) + "\n"


class Client:
    """A connection to a running server, for submitting jobs and waiting for them.

    `server_dir`: the server directory (default `HQ_SERVER_DIR`, else `~/.hq-server`);
    `python_env`: how workers start the interpreter of function tasks."""

    def __init__(self, server_dir: Optional[GenericPath] = None, python_env: Optional[PythonEnv] = None):
        self.connection = ClientConnection(str(server_dir) if server_dir else None)
        self.python_env = python_env if python_env is not None else PythonEnv()

    def submit(self, job: Job) -> SubmittedJob:
        description = job._build(self)
        count = len(description.tasks)
        if count < 1:
            raise Exception("Submitted job must have at least a single task")
        job_id = self.connection.submit_job(description)
        logging.info(f"Submitted job {job_id} with {count} {pluralize('task', count)}")
        return SubmittedJob(job=job, id=job_id)

    def wait_for_jobs(self, jobs: Sequence[SubmittedJob], raise_on_error: bool = True) -> bool:
        """Blocks until every job has ended, with a progress bar. Returns True when all
        succeeded; with `raise_on_error` a failure raises `FailedJobsException` instead."""
        ids = [job.id for job in jobs]
        shown = ",".join(str(i) for i in ids)
        logging.info(f"Waiting for {pluralize('job', len(ids))} {'{' + shown + '}' if len(ids) > 1 else shown} to finish")
        failed = self.connection.wait_for_jobs(ids, _progress_bar())
        if failed and raise_on_error:
            raise FailedJobsException(self.connection.get_failed_tasks(failed), {job.id: job.job for job in jobs})
        return len(failed) == 0

    def get_failed_tasks(self, job: SubmittedJob) -> Dict[TaskId, FailedTaskContext]:
        job_id = get_job_id(job)
        return self.connection.get_failed_tasks([job_id]).get(job_id, {})

    def forget(self, job: HasJobId) -> None:
        """Removes a completed job from the server, freeing its memory."""
        job_id = get_job_id(job)
        self.connection.forget_job(job_id)
        logging.info(f"Forgotten job {job_id}")


def _progress_bar():
    """A tqdm bar fed with the jobs' progress; without tqdm, progress is only logged."""
    state = {"bar": None, "done": 0}

    def update(jobs) -> None:
        total = sum(j["total"] for j in jobs.values())
        finished = sum(j["finished"] for j in jobs.values())
        completed = sum(1 for j in jobs.values() if j["completed"])
        if state["bar"] is None:
            try:
                from tqdm import tqdm
            except ImportError:
                state["bar"] = False
            else:
                state["bar"] = tqdm(total=total, unit="task")
        bar = state["bar"]
        if bar:
            bar.set_postfix_str(f"{completed}/{len(jobs)} {pluralize('job', len(jobs))} completed")
            if finished > bar.n:
                bar.update(finished - bar.n)
            if completed == len(jobs):
                bar.close()
        elif finished != state["done"]:
            logging.info(f"{finished}/{total} tasks finished")
        state["done"] = finished

    return update

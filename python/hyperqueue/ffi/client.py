import dataclasses
from typing import Dict, List, Optional, Sequence

from .bridge import (
    HqClientContext,
    JobId,
    TaskId,
    connect_to_server,
    forget_job,
    get_failed_tasks,
    stop_server,
    submit_job,
    wait_for_jobs,
)
from .protocol import JobDescription


@dataclasses.dataclass(frozen=True)
class FailedTaskContext:
    error: str
    cwd: Optional[str]
    stdout: Optional[str]
    stderr: Optional[str]


TaskFailureMap = Dict[JobId, Dict[TaskId, FailedTaskContext]]


class ClientConnection:
    """A connection to a running server (`directory`: its server directory, default
    `HQ_SERVER_DIR` or `~/.hq-server`). Raises if no server runs there."""

    def __init__(self, directory: Optional[str] = None):
        self.ctx: HqClientContext = connect_to_server(directory)

    def submit_job(self, job_description: JobDescription) -> JobId:
        return submit_job(self.ctx, job_description)

    def wait_for_jobs(self, job_ids: Sequence[JobId], callback=None) -> List[JobId]:
        """Blocks until the jobs have ended; returns the ids of those with a failed task."""
        return wait_for_jobs(self.ctx, job_ids, callback)

    def get_failed_tasks(self, job_ids: Sequence[JobId]) -> TaskFailureMap:
        return {
            job: {task: FailedTaskContext(**info) for (task, info) in tasks.items()}
            for (job, tasks) in get_failed_tasks(self.ctx, job_ids).items()
        }

    def forget_job(self, job_id: JobId) -> None:
        forget_job(self.ctx, job_id)

    def stop_server(self) -> None:
        stop_server(self.ctx)

    def close(self) -> None:
        self.ctx.close()

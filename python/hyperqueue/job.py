import dataclasses
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from .common import GenericPath
from .ffi import JobId, TaskId
from .ffi.protocol import JobDescription
from .output import Stdio, default_stderr, default_stdout
from .task.function import PythonFunction
from .task.program import ExternalProgram, ProgramArgs
from .task.task import EnvType, Task


def merge_envs(default: EnvType, env: Optional[EnvType]) -> EnvType:
    merged = dict(default)
    merged.update(env or {})
    return merged


class Job:
    """A job being described: program and function tasks, numbered 0, 1, 2... as they are
    added. `max_fails` failed tasks cancel the rest (None: never); `default_env` and
    `default_workdir` apply to every task."""

    def __init__(
        self,
        default_workdir: Optional[GenericPath] = None,
        max_fails: Optional[int] = 1,
        default_env: Optional[EnvType] = None,
        name: Optional[str] = None,
    ):
        self.tasks: List[Task] = []
        self.task_map: Dict[TaskId, Task] = {}
        self.max_fails = max_fails
        self.default_workdir = Path(default_workdir).resolve() if default_workdir is not None else None
        self.default_env = dict(default_env or {})
        self.name = name

    def task_by_id(self, id: TaskId) -> Optional[Task]:
        return self.task_map.get(id)

    def program(
        self,
        args: ProgramArgs,
        *,
        env: Optional[EnvType] = None,
        cwd: Optional[GenericPath] = None,
        stdout: Optional[Stdio] = default_stdout(),
        stderr: Optional[Stdio] = default_stderr(),
        stdin: Optional[Union[str, bytes]] = None,
        deps: Sequence[Task] = (),
        name: Optional[str] = None,
        task_dir: bool = False,
        priority: int = 0,
        resources=None,
        crash_limit: Optional[int] = None,
    ) -> ExternalProgram:
        """Adds a task that runs `args` (a list of strings, or one string for a lone program)."""
        task = ExternalProgram(
            len(self.tasks),
            args=args,
            env=merge_envs(self.default_env, env),
            cwd=cwd or self.default_workdir,
            dependencies=deps,
            stdout=stdout,
            stderr=stderr,
            stdin=stdin,
            name=name,
            task_dir=task_dir,
            priority=priority,
            resources=resources,
            crash_limit=crash_limit,
        )
        self._add(task)
        return task

    def function(
        self,
        fn,
        *,
        args=(),
        kwargs=None,
        env: Optional[EnvType] = None,
        cwd: Optional[GenericPath] = None,
        stdout: Optional[Stdio] = default_stdout(),
        stderr: Optional[Stdio] = default_stderr(),
        deps: Sequence[Task] = (),
        name: Optional[str] = None,
        priority: int = 0,
        resources=None,
        crash_limit: Optional[int] = None,
    ) -> PythonFunction:
        """Adds a task that calls `fn(*args, **kwargs)` on a worker."""
        task = PythonFunction(
            len(self.tasks),
            fn,
            args=args,
            kwargs=kwargs,
            env=merge_envs(self.default_env, env),
            cwd=cwd or self.default_workdir,
            stdout=stdout,
            stderr=stderr,
            name=name,
            dependencies=deps,
            priority=priority,
            resources=resources,
            crash_limit=crash_limit,
        )
        self._add(task)
        return task

    def _add(self, task: Task) -> None:
        self.tasks.append(task)
        self.task_map[task.task_id] = task

    def _build(self, client) -> JobDescription:
        return JobDescription(
            name=self.name, tasks=[task._build(client) for task in self.tasks], max_fails=self.max_fails
        )


@dataclasses.dataclass
class SubmittedJob:
    """A job the server has accepted, with its id."""

    job: Job
    id: JobId


HasJobId = Union[JobId, SubmittedJob]


def get_job_id(job: HasJobId) -> JobId:
    if isinstance(job, SubmittedJob):
        return job.id
    if isinstance(job, int) and not isinstance(job, bool):
        return job
    raise ValueError(f"Invalid value of type {type(job)} passed to `get_job_id`")

from pathlib import Path
from typing import Dict, Optional, Sequence, Union

from ..common import GenericPath
from ..ffi import TaskId
from ..ffi.protocol import ResourceRequest, TaskDescription
from ..output import Stdio, StdioDef
from ..validation import ValidationException

EnvType = Dict[str, str]


def resource_variants(resources) -> Sequence[ResourceRequest]:
    """None: the default request; one request; or a sequence of them (variants)."""
    if resources is None:
        return ()
    if isinstance(resources, ResourceRequest):
        return (resources,)
    variants = tuple(resources)
    for r in variants:
        if not isinstance(r, ResourceRequest):
            raise ValidationException(f"Expected ResourceRequest, got {type(r).__name__}: {r!r}")
    return variants


def build_stdio(stdio: Optional[Stdio], stream: str) -> Optional[StdioDef]:
    if isinstance(stdio, StdioDef):
        return stdio
    if isinstance(stdio, (str, Path)):
        return StdioDef.from_path(stdio)
    if stdio is None:
        return None
    raise ValidationException(
        f"Invalid value provided for `{stream}`: {type(stdio)}. Expected str, Path or `StdioDef` or `None`."
    )


class Task:
    """A task of a job; its id is its position in the job. Usable as a dependency of later tasks."""

    def __init__(
        self,
        task_id: TaskId,
        dependencies: Sequence["Task"] = (),
        priority: int = 0,
        resources=None,
        env: Optional[EnvType] = None,
        cwd: Optional[GenericPath] = None,
        stdout: Optional[Stdio] = None,
        stderr: Optional[Stdio] = None,
        name: Optional[str] = None,
        crash_limit: Optional[int] = None,
    ):
        for dep in dependencies:
            if not isinstance(dep, Task):
                raise ValidationException(f"A dependency must be a task of the same job, not {dep!r}")
        self.task_id = task_id
        self.dependencies = list(dependencies)
        self.priority = priority
        self.resources = resources
        self.env = env or {}
        self.cwd = str(cwd) if cwd else None
        self.stdout = build_stdio(stdout, "stdout")
        self.stderr = build_stdio(stderr, "stderr")
        self.name = name
        self.crash_limit = crash_limit

    @property
    def label(self) -> str:
        """The task's name, or its id when it has none."""
        return self.name if self.name is not None else str(self.task_id)

    def _build(self, client) -> TaskDescription:
        raise NotImplementedError

    def _description(self, args, env: EnvType, stdin: Optional[bytes], task_dir: bool) -> TaskDescription:
        """What the server gets for this task: what differs per kind of task is passed in."""
        return TaskDescription(
            id=self.task_id,
            args=args,
            env=env,
            stdout=self.stdout,
            stderr=self.stderr,
            stdin=stdin,
            cwd=self.cwd,
            dependencies=[dep.task_id for dep in self.dependencies],
            task_dir=task_dir,
            priority=self.priority,
            resource_request=resource_variants(self.resources),
            crash_limit=self.crash_limit,
        )

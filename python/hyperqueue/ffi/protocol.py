import dataclasses
import datetime
from typing import Dict, List, Optional, Sequence, Union

from ..output import StdioDef


class ResourceRequest:
    """What one task needs on a worker. `cpus` and every value of `resources` may be an int
    (whole units), a float (fractions, as f32) or a str in the CLI's grammar (`"all"`,
    `"2 compact!"`). `n_nodes > 0` asks for whole workers (a multi-node task)."""

    def __init__(
        self,
        *,
        n_nodes: int = 0,
        cpus: Union[int, float, str, None] = None,
        resources: Optional[Dict[str, Union[int, float, str]]] = None,
        min_time: Optional[datetime.timedelta] = None,
    ):
        self.n_nodes = n_nodes
        self.resources = dict(resources) if resources is not None else {}
        # `resources={"cpus": 32}` asks for 32 CPUs (upstream's default of `cpus=1` silently
        # replaced it); an explicit `cpus` argument still wins.
        if cpus is not None or "cpus" not in self.resources:
            self.resources["cpus"] = 1 if cpus is None else cpus
        self.min_time = min_time

    def __repr__(self) -> str:
        return f"<ResourceRequest n_nodes={self.n_nodes} resources={self.resources} min_time={self.min_time}>"


@dataclasses.dataclass()
class TaskDescription:
    id: int
    args: List[str]
    cwd: Optional[str]
    stdout: Optional[StdioDef]
    stderr: Optional[StdioDef]
    stdin: Optional[bytes]
    env: Optional[Dict[str, str]]
    dependencies: Sequence[int]
    task_dir: bool
    priority: int
    resource_request: Sequence[ResourceRequest]
    crash_limit: Optional[int]


@dataclasses.dataclass
class JobDescription:
    name: Optional[str]
    tasks: List[TaskDescription]
    max_fails: Optional[int]

import re

from .common import GenericPath
from .job import Job
from .task.task import Task
from .utils.package import MissingPackageException

_PLAIN_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _dot_id(name: str) -> str:
    if _PLAIN_ID.match(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def visualize_job(job: Job, path: GenericPath) -> None:
    """Writes the task graph of `job` to `path` in the DOT format: each task, then (depth first)
    its dependencies and the edges from them. Uses pydot when installed, else writes the same
    text itself."""
    statements = []  # ("node", task) or ("edge", dep, task), in writing order
    seen = set()

    def visit(task: Task) -> None:
        if task.task_id in seen:
            return
        seen.add(task.task_id)
        statements.append(("node", task))
        for dep in task.dependencies:
            visit(dep)
            statements.append(("edge", dep, task))

    for task in job.tasks:
        visit(task)
    try:
        import pydot
    except ImportError:
        pydot = None
    if pydot is not None:
        graph = pydot.Dot("job", graph_type="digraph")
        for s in statements:
            if s[0] == "node":
                graph.add_node(pydot.Node(s[1].label))
            else:
                graph.add_edge(pydot.Edge(pydot.Node(s[1].label).get_name(), pydot.Node(s[2].label).get_name()))
        graph.write(str(path))
        return
    lines = ["digraph job {"]
    for s in statements:
        if s[0] == "node":
            lines.append(f"{_dot_id(s[1].label)};")
        else:
            lines.append(f"{_dot_id(s[1].label)} -> {_dot_id(s[2].label)};")
    lines.append("}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


__all__ = ["visualize_job", "MissingPackageException"]

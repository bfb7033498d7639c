"""HyperQueue's Python API: build jobs of program and Python function tasks, submit them to a
running `hq` server (or a `LocalCluster`), and wait for them.

Importing this package starts nothing, and loads the client side only when it is first used:
every function task imports `hyperqueue.task.function` on a worker, where each millisecond of
import time is paid once per task.
"""
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (per-task cost)

__version__ = "0.26.2"

if TYPE_CHECKING:
    from .client import Client
    from .cluster import LocalCluster
    from .job import Job

_LAZY = {"Client": ".client", "LocalCluster": ".cluster", "Job": ".job"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hyperqueue' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def get_version() -> str:
    """The version of this package (and of the `hq` it is meant to drive)."""
    return __version__


__all__ = ["Client", "Job", "LocalCluster", "get_version"]

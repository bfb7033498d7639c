"""HyperQueue's Python API: build jobs of program and Python function tasks, submit them to a
running `hq` server (or a `LocalCluster`), and wait for them.

Importing this package starts nothing: worker-side tasks import `hyperqueue.task.function`.
"""
from .client import Client
from .cluster import LocalCluster
from .job import Job

__version__ = "0.26.2"


def get_version() -> str:
    """The version of this package (and of the `hq` it is meant to drive)."""
    return __version__


__all__ = ["Client", "Job", "LocalCluster", "get_version"]

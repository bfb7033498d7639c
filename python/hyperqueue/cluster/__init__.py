import dataclasses
import multiprocessing
from pathlib import Path
from typing import Optional

from ..client import Client
from ..ffi.cluster import Cluster


@dataclasses.dataclass
class WorkerConfig:
    """A worker of a local cluster: `cores` CPUs (None: all of this machine's)."""

    cores: Optional[int] = None


class LocalCluster:
    """A server and workers on this machine, for trying things out and for tests. Stopped by
    `stop()` or at the end of a `with` block, and in any case when this process ends."""

    def __init__(self, server_dir: Optional[Path] = None, worker_config: Optional[WorkerConfig] = None):
        self.cluster = Cluster(str(server_dir) if server_dir is not None else None)
        if worker_config is not None:
            self.start_worker(worker_config)

    def start_worker(self, config: Optional[WorkerConfig] = None) -> None:
        """Starts a worker and returns once it has registered."""
        config = config if config is not None else WorkerConfig()
        self.cluster.add_worker(config.cores or multiprocessing.cpu_count())

    def client(self, **client_args) -> Client:
        return Client(self.cluster.server_dir, **client_args)

    def stop(self) -> None:
        self.cluster.stop()

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        self.stop()

"""A server and workers on this machine as real `hq` processes in one server directory.

The server is started with its stdin on a pipe held by this process and a private variable
that makes it stop when that pipe closes: however this process ends (even SIGKILL), the server
stops, and the workers (`--on-server-lost=stop`) stop with it."""
import atexit
import os
import subprocess
import tempfile
import time
import weakref
from typing import List, Optional

from .bridge import HqError, connect_to_server, hq_command

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def _log_tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()[-2000:]
        return data.decode(errors="replace").strip()
    except OSError:
        return ""


def _finish(processes: List[subprocess.Popen]) -> None:
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for p in processes:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class HqClusterContext:
    def __init__(self, directory: Optional[str]):
        self.server_dir = str(directory) if directory is not None else tempfile.mkdtemp(prefix="hq")
        os.makedirs(self.server_dir, exist_ok=True)
        self.stopped = False
        self.workers: List[subprocess.Popen] = []
        self._log = os.path.join(self.server_dir, "server.log")
        env = dict(os.environ, HQ_STOP_ON_STDIN_EOF="1")
        with open(self._log, "ab") as log:
            self.server = subprocess.Popen(
                hq_command(self.server_dir, "server", "start"),
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self._finalizer = weakref.finalize(self, _finish_all, self.server, self.workers)
        atexit.register(self._finalizer)
        self.ctx = self._connect()

    def _connect(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        access = os.path.join(self.server_dir, "hq-current", "access.json")
        while True:
            if self.server.poll() is not None:
                raise HqError(f"The server of the local cluster exited: {_log_tail(self._log)}", "HQ_CONNECTION")
            if os.path.exists(access):
                try:
                    return connect_to_server(self.server_dir)
                except HqError:
                    pass
            if time.monotonic() > deadline:
                raise HqError(f"The server of the local cluster did not start: {_log_tail(self._log)}", "HQ_TIMEOUT")
            time.sleep(0.02)

    def add_worker(self, cores: int) -> None:
        if self.stopped:
            raise Exception("Attempting to add worker to a stopped server")
        workdir = os.path.join(self.server_dir, "worker", "workdir")
        os.makedirs(workdir, exist_ok=True)
        index = len(self.workers) + 1
        log_path = os.path.join(self.server_dir, f"worker-{index}.log")
        with open(log_path, "ab") as log:
            worker = subprocess.Popen(
                hq_command(
                    self.server_dir,
                    "worker",
                    "start",
                    "--cpus",
                    str(cores),
                    "--detect-resources=none",
                    "--work-dir",
                    workdir,
                    "--on-server-lost=stop",
                ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.workers.append(worker)
        # Returns once the server lists this very process as a worker.
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if worker.poll() is not None:
                raise HqError(f"A worker of the local cluster exited: {_log_tail(log_path)}", "HQ_CONNECTION")
            workers = self.ctx.request("worker-list")
            if any(w.get("configuration", {}).get("pid") == worker.pid for w in workers):
                return
            if time.monotonic() > deadline:
                raise HqError(f"A worker of the local cluster did not register: {_log_tail(log_path)}", "HQ_TIMEOUT")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.stopped:
            raise Exception("Attempting to stop an already stopped server")
        self.stopped = True
        try:
            self.ctx.request("stop-server")
        except HqError:
            pass
        self.ctx.close()
        self._finalizer()
        atexit.unregister(self._finalizer)


def _finish_all(server: subprocess.Popen, workers: List[subprocess.Popen]) -> None:
    if server.stdin is not None and not server.stdin.closed:
        try:
            server.stdin.close()
        except OSError:
            pass
    _finish([server] + list(workers))


def cluster_start(directory: Optional[str] = None) -> HqClusterContext:
    return HqClusterContext(directory)


class Cluster:
    def __init__(self, directory: Optional[str] = None):
        self.directory = directory
        self.ctx = cluster_start(directory)

    def add_worker(self, cores: int) -> None:
        self.ctx.add_worker(cores)

    @property
    def server_dir(self) -> str:
        return self.ctx.server_dir

    def stop(self) -> None:
        self.ctx.stop()

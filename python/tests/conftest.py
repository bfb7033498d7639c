"""Fixtures: a real `hq` server and workers from the project's build (HQ_BIN, else dist/hq),
in a temporary directory that is also the test's working directory. Every process is killed at
the end. The workers' `python3` is the interpreter running the tests (a shim on PATH), so
function tasks find the same cloudpickle."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HQ = os.environ.get("HQ_BIN") or str(ROOT / "dist" / "hq")
PACKAGE_DIR = str(ROOT / "python")
# The tests use the package from this tree, installed or not.
sys.path.insert(0, PACKAGE_DIR)
DEADLINE_S = 30.0


def wait_until(check, what: str, timeout: float = DEADLINE_S):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


class HqEnv:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.server_dir = str(tmp / "hq-server")
        self.processes = []
        shim = tmp / "shim"
        shim.mkdir()
        (shim / "python3").symlink_to(sys.executable)
        self.env = dict(
            os.environ,
            HQ_BIN=HQ,
            HQ_SERVER_DIR=self.server_dir,
            PATH=f"{shim}:{tmp}:{os.environ.get('PATH', '')}",
            PYTHONPATH=os.pathsep.join(p for p in [PACKAGE_DIR, os.environ.get("PYTHONPATH")] if p),
        )

    def hq(self, *args: str) -> str:
        return subprocess.run(
            [HQ, "--server-dir", self.server_dir, *args], env=self.env, check=True, capture_output=True, text=True
        ).stdout

    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")
        p = subprocess.Popen(
            [HQ, "--server-dir", self.server_dir, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes.append(p)
        return p

    def start_server(self) -> subprocess.Popen:
        p = self.spawn("server", "server", "start", "--host", "127.0.0.1")
        wait_until(lambda: (Path(self.server_dir) / "hq-current" / "access.json").exists(), "the access file")
        return p

    def start_worker(self, *args: str) -> int:
        index = sum(1 for p in self.processes if "worker" in p.args) + 1
        p = self.spawn(f"worker{index}", "worker", "start", "--hostname", f"worker{index}", *args)

        def registered():
            workers = json.loads(self.hq("--output-mode", "json", "worker", "list"))
            return next((w["id"] for w in workers if w["configuration"]["hostname"] == f"worker{index}"), None)

        worker_id = wait_until(registered, f"worker{index} to register")
        assert p.poll() is None
        return worker_id

    def task_stats(self, job_id: int) -> dict:
        jobs = json.loads(self.hq("--output-mode", "json", "job", "list", "--all"))
        return next(j["task_stats"] for j in jobs if j["id"] == job_id)

    def kill_all(self):
        for p in self.processes:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            p.wait()


TEST_TIMEOUT_S = 120


@pytest.fixture(autouse=True)
def bounded_test():
    """No test runs for ever, with or without the pytest-timeout plugin."""

    def expired(signum, frame):
        raise TimeoutError(f"the test ran longer than {TEST_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_TIMEOUT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def hq_env(tmp_path, monkeypatch):
    env = HqEnv(tmp_path)
    monkeypatch.chdir(tmp_path)
    for key in ("HQ_BIN", "HQ_SERVER_DIR", "PATH", "PYTHONPATH"):
        monkeypatch.setenv(key, env.env[key])
    try:
        yield env
    finally:
        env.kill_all()

"""The Python API against a real server: errors a user can act on (and that change nothing),
function tasks whose worker interpreter lacks what they need, and no process left behind when
the Python process dies."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

import hyperqueue as hq
from hyperqueue.client import FailedJobsException, PythonEnv
from hyperqueue.ffi.protocol import ResourceRequest

from .conftest import HQ, PACKAGE_DIR, wait_until


def job_count(hq_env) -> int:
    return len(json.loads(hq_env.hq("--output-mode", "json", "job", "list", "--all")))


def processes_with(needle: str):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline and int(pid) != os.getpid():
            found.append((int(pid), cmdline))
    return found


def test_no_server_says_where_it_looked(hq_env):
    with pytest.raises(Exception, match="No running instance of HQ found"):
        hq.Client(hq_env.server_dir)


def test_no_hq_binary_names_what_was_tried(hq_env, monkeypatch):
    monkeypatch.setenv("HQ_BIN", "/nonexistent/hq")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(FileNotFoundError, match="HQ_BIN=/nonexistent/hq"):
        hq.Client(hq_env.server_dir)


def test_bad_jobs_are_refused_and_create_nothing(hq_env):
    hq_env.start_server()
    hq_env.start_worker("--cpus", "1")
    client = hq.Client()
    with pytest.raises(Exception, match="Submitted job must have at least a single task"):
        client.submit(hq.Job())
    job = hq.Job()
    job.program(["true"], resources=ResourceRequest(cpus="2 sideways"))
    with pytest.raises(Exception, match="task 0.resources"):
        client.submit(job)
    job = hq.Job()
    lock = threading.Lock()
    job.function(lambda: lock.acquire())
    with pytest.raises(TypeError, match="cannot be pickled"):
        client.submit(job)
    assert job_count(hq_env) == 0
    # The connection is still good after refusals.
    job = hq.Job()
    job.program(["true"])
    client.wait_for_jobs([client.submit(job)])


def test_failures_are_reported_with_labels_and_paths(hq_env):
    hq_env.start_server()
    hq_env.start_worker("--cpus", "1")
    client = hq.Client()
    job = hq.Job(max_fails=None)

    def crunch():
        raise ValueError("no data in the input")

    job.function(crunch)
    job.program(["sh", "-c", "exit 3"], name="shell-step", stderr="step.err")
    submitted = client.submit(job)
    with pytest.raises(FailedJobsException) as raised:
        client.wait_for_jobs([submitted])
    text = str(raised.value)
    assert "Task crunch/0 (id=0):" in text and "ValueError: no data in the input" in text
    assert "Task shell-step (id=1):\nProgram terminated with exit code 3." in text
    failed = client.get_failed_tasks(submitted)
    assert sorted(failed) == [0, 1]
    assert failed[1].stderr == os.path.abspath("step.err")
    assert failed[0].stdout == os.path.abspath("0.stdout")
    assert failed[0].cwd == os.getcwd()
    client.forget(submitted)
    assert job_count(hq_env) == 0


def test_forget_of_a_running_job_is_refused(hq_env):
    hq_env.start_server()
    client = hq.Client()
    job = hq.Job()
    job.program(["sleep", "10"])
    submitted = client.submit(job)
    with pytest.raises(Exception, match=f"Cannot forget job {submitted.id}"):
        client.forget(submitted)
    assert job_count(hq_env) == 1


@pytest.mark.parametrize(
    "python_env,expected",
    [
        # No site-packages: the worker's interpreter has no cloudpickle.
        (PythonEnv(python_bin="python3 -S", prologue=":"), "need the cloudpickle package"),
        (PythonEnv(prologue="unset PYTHONPATH"), "cannot import the hyperqueue package"),
    ],
)
def test_a_worker_interpreter_without_what_tasks_need_says_so(hq_env, python_env, expected):
    hq_env.start_server()
    hq_env.start_worker("--cpus", "1")
    client = hq.Client(python_env=python_env)
    job = hq.Job()
    job.function(lambda: print("hello"))
    submitted = client.submit(job)
    assert not client.wait_for_jobs([submitted], raise_on_error=False)
    assert expected in client.get_failed_tasks(submitted)[0].error


def run_and_kill(hq_env, script: str, ready_file: str) -> None:
    """Runs `script` in a new Python process, SIGKILLs it once it wrote `ready_file`."""
    env = dict(hq_env.env, PYTHONPATH=PACKAGE_DIR)
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], env=env, cwd=hq_env.tmp)
    try:
        wait_until(lambda: os.path.exists(ready_file) or p.poll() is not None, "the script to be ready")
        assert p.poll() is None, "the script ended early"
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()


def test_a_killed_client_leaves_no_bridge(hq_env):
    hq_env.start_server()
    ready = str(hq_env.tmp / "ready")
    run_and_kill(
        hq_env,
        f"""
        import time, hyperqueue as hq
        client = hq.Client()
        open({ready!r}, "w").close()
        time.sleep(60)
        """,
        ready,
    )
    wait_until(lambda: not processes_with(f"{hq_env.server_dir} api"), "the bridge to exit", timeout=10)


def test_a_killed_local_cluster_leaves_no_process(hq_env):
    ready = str(hq_env.tmp / "ready")
    cluster_dir = str(hq_env.tmp / "cluster")
    run_and_kill(
        hq_env,
        f"""
        import time
        from hyperqueue import LocalCluster
        from hyperqueue.cluster import WorkerConfig
        cluster = LocalCluster({cluster_dir!r}, WorkerConfig(cores=1))
        open({ready!r}, "w").close()
        time.sleep(60)
        """,
        ready,
    )
    wait_until(lambda: not processes_with(cluster_dir), "the cluster's processes to exit", timeout=15)


def test_local_cluster_runs_jobs_and_stops_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HQ_BIN", HQ)
    monkeypatch.setenv("PYTHONPATH", PACKAGE_DIR)
    with hq.LocalCluster(tmp_path / "cluster") as cluster:
        cluster.start_worker()
        client = cluster.client(python_env=PythonEnv(python_bin=sys.executable))
        job = hq.Job()
        first = job.program(["sh", "-c", "echo one > one.txt"])
        job.function(lambda: open("two.txt", "w").write(open("one.txt").read()), deps=[first])
        client.wait_for_jobs([client.submit(job)])
        assert (tmp_path / "two.txt").read_text() == "one\n"
    with pytest.raises(Exception, match="already stopped"):
        cluster.stop()
    with pytest.raises(Exception, match="stopped server"):
        cluster.start_worker()
    assert not processes_with(str(tmp_path / "cluster"))

"""The Python snippets of the documents the project was created from, run as they are shown
(a task body that needs TensorFlow does something observable instead)."""
import json
import os
import stat
import time
from pathlib import Path

import hyperqueue as hq
from hyperqueue.ffi.protocol import ResourceRequest


def executable(path: str, script: str) -> None:
    Path(path).write_text("#!/bin/sh\n" + script)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)


def test_program_task(hq_env):
    hq_env.start_server()
    hq_env.start_worker("--cpus", "1")
    executable("my-computation", 'echo "computed by task $HQ_TASK_ID" > result.txt\n')

    client = hq.Client()
    job = hq.Job()
    job.program(args=["./my-computation"])
    job_id = client.submit(job)
    client.wait_for_jobs([job_id])

    assert Path("result.txt").read_text() == "computed by task 0\n"
    assert hq_env.task_stats(job_id.id)["finished"] == 1


def test_function_task_with_resources(hq_env):
    hq_env.start_server()
    # A worker too small for the task, and one that has what it asks for.
    hq_env.start_worker("--cpus", "4")
    big = hq_env.start_worker("--cpus", "32", "--resource", "gpus/amd=[0]")
    marker = os.path.abspath("ran-on.txt")

    def my_computation():
        with open(marker, "w") as f:
            f.write(f"{os.environ['HQ_CPUS'].count(',') + 1} {os.environ.get('ROCR_VISIBLE_DEVICES')}")

    client = hq.Client()
    job = hq.Job()
    resources = ResourceRequest(resources={"cpus": 32, "gpus/amd": 1})
    job.function(my_computation, resources=resources)
    job_id = client.submit(job)
    client.wait_for_jobs([job_id])

    assert Path(marker).read_text() == "32 0"
    [task] = json.loads(hq_env.hq("--output-mode", "json", "task", "info", str(job_id.id), "0"))
    assert task["worker"] == big


def test_task_dependencies(hq_env):
    hq_env.start_server()
    hq_env.start_worker("--cpus", "4")
    ledger = os.path.abspath("ledger")
    for name in ("preprocessing1", "preprocessing2", "postprocessing"):
        # On PATH (the fixture puts the working directory there), as the snippet calls them.
        executable(name, f"sleep 0.2; echo {name} >> '{ledger}'\n")

    def my_function():
        with open(ledger, "a") as f:
            f.write("main\n")

    client = hq.Client()
    job = hq.Job()
    p1 = job.program("preprocessing1")
    p2 = job.program("preprocessing2")
    main = job.function(my_function, deps=[p1, p2])
    job.program("postprocessing", deps=[main])
    job_id = client.submit(job)
    client.wait_for_jobs([job_id])

    lines = Path(ledger).read_text().split()
    assert sorted(lines[:2]) == ["preprocessing1", "preprocessing2"]
    assert lines[2:] == ["main", "postprocessing"]

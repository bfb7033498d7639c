"""The connection to `hq`: one `hq api` bridge process per client, spoken to in JSON lines on
its stdin/stdout (the protocol is documented in the project's src/api/bridge.ts). The bridge
is the same `hq` as the server, so this package never re-implements the server's protocol,
and it exits when this process closes its stdin, so none outlives its client.

The functions keep the names of upstream's native module, so the classes in `client.py` and
`cluster.py` read the same.
"""
import base64
import json
import os
import shutil
import subprocess
import sysconfig
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence

from . import JobId, TaskId
from ..output import default_stderr, default_stdout


class HqError(Exception):
    """An error reported by `hq`; `code` is its stable code (e.g. `HQ_SERVER_NOT_FOUND`)."""

    def __init__(self, message: str, code: str = "HQ_INTERNAL"):
        super().__init__(message)
        self.code = code


def find_hq_binary() -> str:
    """`HQ_BIN`, then an `hq` shipped inside this package, then the one the wheel installed, then
    `hq` on PATH."""
    tried = []
    env = os.environ.get("HQ_BIN")
    if env:
        if os.path.isfile(env) and os.access(env, os.X_OK):
            return env
        tried.append(f"HQ_BIN={env} (not an executable file)")
    else:
        tried.append("HQ_BIN (not set)")
    bundled = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_bin", "hq")
    if os.path.isfile(bundled) and os.access(bundled, os.X_OK):
        return bundled
    tried.append(f"{bundled} (not there)")
    # The wheel installs the executable as <prefix>/bin/hq: found even when that directory is
    # not on PATH (a virtual environment that was not activated).
    for scheme in (None, f"{os.name}_user"):
        try:
            scripts = sysconfig.get_path("scripts", scheme) if scheme else sysconfig.get_path("scripts")
        except KeyError:
            continue
        installed = os.path.join(scripts, "hq")
        if os.path.isfile(installed) and os.access(installed, os.X_OK):
            return installed
    found = shutil.which("hq")
    if found:
        return found
    tried.append("hq on PATH (not found)")
    raise FileNotFoundError("hq executable not found: set HQ_BIN or put hq on PATH; tried " + ", ".join(tried))


def hq_command(server_dir: Optional[str], *args: str) -> List[str]:
    command = [find_hq_binary()]
    if server_dir is not None:
        command += ["--server-dir", str(server_dir)]
    return command + list(args)


class HqClientContext:
    """One running `hq api` bridge and its line protocol. Thread-safe: one request at a time."""

    def __init__(self, server_dir: Optional[str]):
        self._lock = threading.Lock()
        self._next_id = 1
        debug = os.environ.get("HQ_PYLOG") == "DEBUG"
        self._process = subprocess.Popen(
            hq_command(server_dir, "api"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None if debug else subprocess.DEVNULL,
        )
        ready = self._read()
        if ready is None or not ready.get("ready"):
            self.close()
            if ready is None:
                raise HqError("the hq api bridge exited before it was ready", "HQ_CONNECTION")
            raise HqError(ready.get("error", "cannot connect to the server"), ready.get("code", "HQ_CONNECTION"))
        self.version = ready.get("version")
        self.server_uid = ready.get("serverUid")

    def _read(self) -> Optional[Dict[str, Any]]:
        assert self._process.stdout is not None
        while True:
            line = self._process.stdout.readline()
            if not line:
                return None
            if line.strip():
                return json.loads(line)

    def request(self, op: str, on_progress: Optional[Callable[[Dict[str, Any]], None]] = None, **fields) -> Any:
        with self._lock:
            if self._process.poll() is not None or self._process.stdin is None:
                raise HqError("The connection to the server was closed", "HQ_CONNECTION")
            request_id = self._next_id
            self._next_id += 1
            message = dict(fields, id=request_id, op=op)
            try:
                self._process.stdin.write((json.dumps(message, separators=(",", ":")) + "\n").encode())
                self._process.stdin.flush()
            except BrokenPipeError:
                raise HqError("The connection to the server was closed", "HQ_CONNECTION") from None
            while True:
                reply = self._read()
                if reply is None:
                    raise HqError("The connection to the server was closed", "HQ_CONNECTION")
                if reply.get("id") != request_id:
                    continue
                if "progress" in reply:
                    if on_progress is not None:
                        on_progress(reply["progress"])
                    continue
                if reply.get("ok"):
                    return reply.get("data")
                raise HqError(reply.get("error", "unknown error"), reply.get("code", "HQ_INTERNAL"))

    def close(self) -> None:
        process = self._process
        if process.stdin is not None and not process.stdin.closed:
            try:
                process.stdin.close()
            except OSError:
                pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def connect_to_server(directory: Optional[str] = None) -> HqClientContext:
    return HqClientContext(directory)


def _amount(value):
    # Floats keep their type across JSON (2.0 would become 2): upstream reads them as f32.
    if isinstance(value, bool):
        raise ValueError(f"Invalid resource amount {value!r}")
    if isinstance(value, float):
        return {"f": value}
    if isinstance(value, (int, str)):
        return value
    raise ValueError(f"Invalid resource amount {value!r}: expected an int, a float or a str")


_DEFAULT_PATHS = {"stdout": default_stdout(), "stderr": default_stderr()}


def _task_json(task) -> Dict[str, Any]:
    """One task, with only what differs from the API's defaults (src/api/job-spec.ts): a job
    of 10,000 tasks is then a few hundred kilobytes, not megabytes."""
    out: Dict[str, Any] = {"id": task.id, "args": [str(a) for a in task.args]}
    if task.cwd is not None:
        out["cwd"] = str(task.cwd)
    if task.env:
        out["env"] = {str(k): str(v) for (k, v) in task.env.items()}
    for stream in ("stdout", "stderr"):
        value = getattr(task, stream)
        if value is None:
            out[stream] = None
        elif not (value.on_close == "none" and value.path is not None and str(value.path) == _DEFAULT_PATHS[stream]):
            out[stream] = {"path": None if value.path is None else str(value.path), "onClose": value.on_close}
    if task.stdin is not None:
        out["stdin"] = base64.b64encode(task.stdin).decode()
    if task.dependencies:
        out["deps"] = list(task.dependencies)
    if task.task_dir:
        out["taskDir"] = True
    if task.priority:
        out["priority"] = task.priority
    if task.resource_request:
        out["resources"] = [
            {
                "nNodes": r.n_nodes,
                "resources": {name: _amount(v) for (name, v) in r.resources.items()},
                "minTime": None if r.min_time is None else r.min_time.total_seconds(),
            }
            for r in task.resource_request
        ]
    if task.crash_limit is not None:
        out["crashLimit"] = task.crash_limit
    return out


def _job_json(job_description, submit_dir: str) -> Dict[str, Any]:
    return {
        "name": job_description.name,
        "maxFails": job_description.max_fails,
        "tasks": [_task_json(task) for task in job_description.tasks],
        "submitDir": submit_dir,
    }


def submit_job(ctx: HqClientContext, job_description) -> JobId:
    job = _job_json(job_description, os.getcwd())
    return ctx.request("submit", job=job)["jobId"]


def wait_for_jobs(ctx: HqClientContext, job_ids: Sequence[JobId], callback=None) -> List[JobId]:
    def on_progress(progress):
        if callback is not None:
            callback({int(k): v for (k, v) in progress.items()})

    data = ctx.request("wait", jobs=list(job_ids), progress=callback is not None, on_progress=on_progress)
    return data["failed"]


def get_failed_tasks(ctx: HqClientContext, job_ids: Sequence[JobId]) -> Dict[JobId, Dict[TaskId, Dict[str, Any]]]:
    data = ctx.request("failed-tasks", jobs=list(job_ids))
    return {int(job): {int(task): info for (task, info) in tasks.items()} for (job, tasks) in data.items()}


def forget_job(ctx: HqClientContext, job_id: JobId) -> None:
    ctx.request("forget", job=job_id)


def stop_server(ctx: HqClientContext) -> None:
    try:
        ctx.request("stop-server")
    except HqError as e:
        # The server may close the connection before its answer is read: it is stopping.
        if e.code != "HQ_CONNECTION":
            raise


def get_hq_version() -> str:
    output = subprocess.run([find_hq_binary(), "--version"], check=True, capture_output=True, text=True)
    return output.stdout.strip().split()[-1]

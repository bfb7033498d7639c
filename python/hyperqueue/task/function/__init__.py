"""Python function tasks. The client pickles `(function, args, kwargs)` into the task's stdin;
on the worker the task runs `task_main` in a Python interpreter, which unpickles and calls the
function (`hyperqueue._task_main`). An exception's traceback goes to `$HQ_ERROR_FILENAME`,
which the worker turns into the task's error (what `Client.get_failed_tasks` shows)."""
import pickle
from typing import Callable, Dict, Optional, Sequence

from ...common import GenericPath
from ...ffi import TaskId
from ...ffi.protocol import TaskDescription
from ..task import EnvType, Task
from .wrapper import CloudWrapper

_WRAPPERS: Dict[int, CloudWrapper] = {}

# Run by `python -c` on the worker, also inside `bash -c "..."` with a prologue: no double
# quotes, dollars or backticks. A worker interpreter without this package fails with a message
# that says so, not just an exit code.
TASK_CODE = (
    "import os, sys\n"
    "try:\n"
    "    from hyperqueue._task_main import task_main as m\n"
    "except ImportError as e:\n"
    "    t = 'Cannot run a Python function task: the interpreter ' + sys.executable + "
    "' cannot import the hyperqueue package (' + str(e) + '); install it there or set PYTHONPATH'\n"
    "    open(os.environ['HQ_ERROR_FILENAME'], 'w').write(t)\n"
    "    print(t, file=sys.stderr)\n"
    "    sys.exit(1)\n"
    "m()"
)


from ..._task_main import task_main  # noqa: E402  (the public name upstream has)


class PythonEnv:
    """How workers start the Python interpreter of function tasks: `python_bin`, run through
    `shell` after `prologue` (e.g. `source venv/bin/activate`) when one is given."""

    def __init__(self, python_bin: str = "python3", prologue: Optional[str] = None, shell: str = "bash"):
        self.python_bin = python_bin
        self.prologue = prologue
        self.shell = shell
        if prologue:
            self.args = [shell, "-c", f'{prologue}\n\n{python_bin} -c "{TASK_CODE}"']
        else:
            self.args = [python_bin, "-c", TASK_CODE]


def _wrap(fn) -> CloudWrapper:
    if isinstance(fn, CloudWrapper):
        return fn
    wrapper = _WRAPPERS.get(id(fn))
    if wrapper is None or wrapper.fn is not fn:
        wrapper = CloudWrapper(fn)
        _WRAPPERS[id(fn)] = wrapper
    return wrapper


class PythonFunction(Task):
    """A task that calls a Python function on a worker (its return value is not kept)."""

    def __init__(
        self,
        task_id: TaskId,
        fn: Callable,
        *,
        args=(),
        kwargs=None,
        env: Optional[EnvType] = None,
        cwd: Optional[GenericPath] = None,
        stdout=None,
        stderr=None,
        name: Optional[str] = None,
        dependencies: Sequence[Task] = (),
        priority: int = 0,
        resources=None,
        crash_limit: Optional[int] = None,
    ):
        if not callable(fn):
            raise TypeError(f"job.function() needs a callable, got {fn!r}")
        if name is None and hasattr(fn, "__name__"):
            name = f"{fn.__name__}/{task_id}"
        super().__init__(
            task_id,
            dependencies,
            priority,
            resources,
            env=env,
            cwd=cwd,
            stdout=stdout,
            stderr=stderr,
            name=name,
            crash_limit=crash_limit,
        )
        self.fn = _wrap(fn)
        self.args = tuple(args)
        self.kwargs = kwargs

    def _build(self, client) -> TaskDescription:
        try:
            stdin = pickle.dumps((self.fn, self.args, self.kwargs))
        except TypeError:
            raise
        except Exception as e:
            raise TypeError(f"The arguments of task {self.label} cannot be pickled: {e}") from e
        return self._description(args=list(client.python_env.args), env=self.env, stdin=stdin, task_dir=True)

    def __repr__(self) -> str:
        return f"<PyFunction fn={getattr(self.fn, '__name__', self.fn)!r}>"

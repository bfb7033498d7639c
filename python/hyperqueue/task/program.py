from typing import Dict, List, Optional, Sequence, Union

from ..common import GenericPath
from ..ffi import TaskId
from ..ffi.protocol import TaskDescription
from ..output import Output, Stdio, gather_outputs
from ..validation import ValidationException, validate_args
from .task import EnvType, Task

ProgramArgs = Union[List[str], str]


def _arg_text(arg) -> str:
    if isinstance(arg, Output):
        if arg.filepath is not None:
            return arg.filepath
        return f"{arg.name}.{arg.extension}" if arg.extension else arg.name
    return arg


class ExternalProgram(Task):
    """A task that runs a program."""

    def __init__(
        self,
        task_id: TaskId,
        *,
        args: ProgramArgs,
        env: Optional[EnvType] = None,
        cwd: Optional[GenericPath] = None,
        stdout: Optional[Stdio] = None,
        stderr: Optional[Stdio] = None,
        stdin: Optional[Union[str, bytes]] = None,
        name: Optional[str] = None,
        dependencies: Sequence[Task] = (),
        task_dir: bool = False,
        priority: int = 0,
        resources=None,
        crash_limit: Optional[int] = None,
    ):
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
        args = [args] if isinstance(args, str) else args
        validate_args(args)
        self.args = list(args)
        self.task_dir = task_dir
        if stdin is None or isinstance(stdin, bytes):
            self.stdin = stdin
        elif isinstance(stdin, str):
            self.stdin = stdin.encode()
        else:
            raise ValidationException("stdin has to be str, bytes, or None")
        self.outputs: Dict[str, Output] = {}
        for output in gather_outputs(self.args) + gather_outputs(self.env):
            if output.name in self.outputs:
                raise ValidationException(f"Output `{output.name}` has been defined multiple times")
            self.outputs[output.name] = output

    def _build(self, client) -> TaskDescription:
        return self._description(
            args=[_arg_text(a) for a in self.args],
            env={k: _arg_text(v) for (k, v) in self.env.items()},
            stdin=self.stdin,
            task_dir=self.task_dir,
        )

    def __getitem__(self, key: str) -> Output:
        if key not in self.outputs:
            raise Exception(f"Output `{key}` not found in {self}")
        return self.outputs[key]

    def __repr__(self) -> str:
        return f"Task(args={self.args}, env={self.env}, cwd={self.cwd}, outputs={self.outputs})"

import dataclasses
from typing import List, Optional, Union

try:
    from typing import Literal
except ImportError:  # Python < 3.8 has no Literal; the package needs 3.9 anyway
    Literal = None  # type: ignore

from .common import GenericPath
from .validation import ValidationException

FileOnCloseBehavior = str  # "none" | "rm-if-finished"


@dataclasses.dataclass
class StdioDef:
    """Where a task's stdout or stderr goes. `path=None` means hq's default path
    (`%{CWD}/job-%{JOB_ID}/%{TASK_ID}.<stream>`); `on_close="rm-if-finished"` removes the file
    when the task finishes successfully."""

    path: Optional[GenericPath]
    on_close: FileOnCloseBehavior

    @staticmethod
    def from_path(path: GenericPath) -> "StdioDef":
        return StdioDef(path=path, on_close="none")

    @staticmethod
    def remove_if_finished(path: Optional[GenericPath] = None) -> "StdioDef":
        return StdioDef(path=path, on_close="rm-if-finished")


Stdio = Union[GenericPath, StdioDef]


def default_stdout() -> str:
    return "%{CWD}/%{TASK_ID}.stdout"


def default_stderr() -> str:
    return "%{CWD}/%{TASK_ID}.stderr"


class Output:
    """A named output file of a program task, usable in its arguments or environment."""

    def __init__(self, name: str, filepath: Optional[str] = None, extension: Optional[str] = None):
        if filepath and extension:
            raise ValidationException("Parameters `filepath` and `extension` are mutually exclusive")
        self.name = name
        self.filepath = filepath
        self.extension = extension.lstrip(".") if extension else None

    def __repr__(self) -> str:
        return f"Output({self.name!r})"


def gather_outputs(collection) -> List[Output]:
    if isinstance(collection, Output):
        return [collection]
    if isinstance(collection, dict):
        collection = list(collection.values())
    if isinstance(collection, (list, tuple)):
        return [item for item in collection if isinstance(item, Output)]
    return []

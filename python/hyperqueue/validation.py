from typing import Any, Sequence


class ValidationException(BaseException):
    """A job or task was described wrongly (raised before anything reaches the server)."""


def validate_args(args: Sequence[Any]) -> None:
    from .output import Output

    if not isinstance(args, (list, tuple)):
        raise ValidationException(f"Program arguments must be a list of strings, not {type(args).__name__}")
    for i, arg in enumerate(args):
        if not isinstance(arg, (str, Output)):
            raise ValidationException(
                f"Argument {i} of the program must be a string or an Output, not {type(arg).__name__}: {arg!r}"
            )

"""What a function task runs on a worker, importing as little as possible: an interpreter
starts for every task, so every millisecond here is paid per task. Nothing else of the package
is loaded; cloudpickle only when the function was pickled by value (closures, lambdas)."""
import os
import pickle
import sys


def load_function(pickled: bytes):
    """Restores a function from its cloudpickle bytes (plain pickle reads them; it imports
    cloudpickle's helpers by itself when the function needs them)."""
    try:
        return pickle.loads(pickled)
    except ModuleNotFoundError as e:
        if e.name == "cloudpickle":
            raise ImportError(
                f"Python function tasks need the cloudpickle package ({e}); install it "
                f"for {sys.executable} (Debian: python3-cloudpickle)"
            ) from e
        raise


def _fail(text: str) -> None:
    path = os.environ.get("HQ_ERROR_FILENAME")
    if path:
        with open(path, "w") as f:
            f.write(text)
    print(text, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(1)


def task_main() -> None:
    """Calls the function pickled on stdin with its arguments; a raised exception becomes the
    task's error (its traceback, through `$HQ_ERROR_FILENAME`)."""
    try:
        import logging

        levels = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}
        logging.basicConfig(
            level=levels.get(os.environ.get("HQ_PYLOG", ""), logging.INFO),
            format="%(asctime)s %(name)s:%(levelname)-4s %(message)s",
            datefmt="%d-%m-%Y %H:%M:%S",
        )
        fn, args, kwargs = pickle.loads(sys.stdin.buffer.read())
        fn(*args, **(kwargs if kwargs is not None else {}))
    except SystemExit:
        raise
    except BaseException:
        import traceback

        _fail(traceback.format_exc())

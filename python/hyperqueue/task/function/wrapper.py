"""Functions travel to workers pickled with cloudpickle (closures and lambdas included), inside an
ordinary pickle that also holds their arguments. Unpickling a `CloudWrapper` on the worker
restores the function from its cloudpickled bytes."""
import inspect


def _cloudpickle():
    try:
        import cloudpickle
    except ImportError as e:
        raise ImportError(
            f"Python function tasks need the cloudpickle package ({e}); install it (Debian: python3-cloudpickle)"
        ) from e
    return cloudpickle


class CloudWrapper:
    """A callable whose pickled form is the cloudpickle of the wrapped function (made once)."""

    def __init__(self, fn, pickled_fn=None, cache=True, protocol=None):
        if fn is None:
            if pickled_fn is None:
                raise ValueError("Pass at least one of `fn` and `pickled_fn`")
            fn = _cloudpickle().loads(pickled_fn)
        if not callable(fn):
            raise TypeError(f"{fn!r} is not callable")
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError("async functions are not supported as tasks")
        self.fn = fn
        self.cache = cache
        self.protocol = protocol
        self.pickled_fn = pickled_fn if cache else None
        if hasattr(fn, "__name__"):
            self.__name__ = fn.__name__

    def _pickled(self) -> bytes:
        if self.pickled_fn is not None:
            return self.pickled_fn
        cloudpickle = _cloudpickle()
        try:
            data = cloudpickle.dumps(self.fn, protocol=self.protocol)
        except Exception as e:
            raise TypeError(f"The function {self.fn!r} cannot be pickled to run as a task: {e}") from e
        if self.cache:
            self.pickled_fn = data
        return data

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __reduce__(self):
        # Restored on the worker as the plain function, by a loader that imports nothing else
        # of the package (each task pays for its imports).
        from ..._task_main import load_function

        return (load_function, (self._pickled(),))

    def __repr__(self) -> str:
        return f"<CloudWrapper({self.fn!r})>"

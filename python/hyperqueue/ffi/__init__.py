"""The connection to `hq`. Kept light on purpose: function tasks on workers import this package
too, and their start-up cost is paid per task. The bridge itself is in `bridge.py`."""

JobId = int
TaskId = int

"""The one exception type for bad user input.

The CLI prints an ``InputError`` as a single ``error: ...`` line and exits with status 2 (a ``NonFiniteLoss``:
status 3; an ``Interrupted`` run: its one line, status 130); anything else is a bug and keeps its traceback.
"""


class InputError(Exception):
    """A wrong setting, missing file or malformed record that the user can fix."""


class NonFiniteLoss(Exception):
    """A loss term became NaN or infinite; the CLI reports the term and step and exits with status 3.
    The last checkpoint written before it (checkpoints/last.ckpt) is kept."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) during a run: the message is the one line the CLI prints (what was kept, or that nothing
    was) before it exits with status 130, as a shell reports a process stopped by SIGINT. A KeyboardInterrupt, so
    nothing that catches ``Exception`` (a sweep's per-run error handling) swallows it."""

"""The one exception type for bad user input.

The CLI prints an ``InputError`` as a single ``error: ...`` line and exits with status 2; anything else
is a bug and keeps its traceback.
"""


class InputError(Exception):
    """A wrong setting, missing file or malformed record that the user can fix."""


class NonFiniteLoss(Exception):
    """A loss term became NaN or infinite; the CLI reports the term and step and exits with status 3.
    The last checkpoint written before it (checkpoints/last.ckpt) is kept."""

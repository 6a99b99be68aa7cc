"""The project's one use of Lightning's private API, and why no public API does the same.

Lightning may rename or remove a private name in any release, without a deprecation. Every private Lightning
name the package touches is therefore touched here and nowhere else, and ``tests/test_lightning_private.py``
checks each against the installed Lightning (it exists, with the signature used here, and Lightning still calls
it where this module expects) and that no other module of the package uses a private Lightning name: an upgrade
that breaks one fails that test rather than a run, or, worse, makes a run silently slower.

``_TrainingEpochLoop._broadcast_sigterm_tensor`` (reached as ``trainer.fit_loop.epoch_loop``): since Lightning
2.5 the training loop calls it before every training step under DDP, to stop every process when rank 0 received
SIGTERM: a broadcast and a host sync per step. ``train.ranks.throttle_sigterm_check`` replaces it, on one
trainer's loop, with a call every few steps. Lightning has no setting for how often the check runs, and no
public hook around it; the loop calls the method through ``self``, so an attribute on the instance replaces it
for that trainer only.

Not private, and so not here: the module's trainer (``LightningModule.trainer``, guarded because it raises when
none is attached: ``PromptClassifier.attached_trainer``), and ModelCheckpoint's record of the best checkpoint
(read as ``best_model_path``/``best_model_score``, written through the callback's own ``state_dict`` and
``load_state_dict``: ``train.runner.final_evaluation``).
"""

from __future__ import annotations

import logging
from typing import Callable, Optional

log = logging.getLogger(__name__)

SIGTERM_CHECK = "_broadcast_sigterm_tensor"  # of lightning.pytorch.loops.training_epoch_loop._TrainingEpochLoop
SIGTERM_CHECK_SINCE = "2.5"  # the first Lightning that calls it before every step


def sigterm_check(trainer) -> Optional[Callable[[], None]]:
    """The per-step SIGTERM check of ``trainer``'s training loop (a bound method, no arguments), or None where
    this Lightning has none: before 2.5 (nothing to throttle) or renamed (a warning: every step pays for it)."""
    check = getattr(trainer.fit_loop.epoch_loop, SIGTERM_CHECK, None)
    if check is None:
        import lightning
        from packaging.version import Version

        if Version(lightning.__version__) >= Version(SIGTERM_CHECK_SINCE):
            log.warning("lightning %s has no %s: its SIGTERM check runs before every training step "
                        "(tests/test_lightning_private.py says what changed)", lightning.__version__, SIGTERM_CHECK)
    return check


def replace_sigterm_check(trainer, check: Callable[[], None]) -> None:
    """Make ``trainer``'s training loop call ``check`` (no arguments) where it would call its own SIGTERM check."""
    setattr(trainer.fit_loop.epoch_loop, SIGTERM_CHECK, check)

"""SemEval-2010 Task 8's relation labels, shared by the official-score metric (``train.metrics.SemEvalF1``) and the
report's bootstrap of that score over test examples (``analysis.power``)."""

from __future__ import annotations

import re
from typing import Optional


def relation_type(label: str) -> Optional[str]:
    """'Cause-Effect(e2,e1)' -> 'Cause-Effect'; 'Other' -> None (excluded from the official score)."""
    return None if label == "Other" else re.sub(r"\(e[12],e[12]\)$", "", label)

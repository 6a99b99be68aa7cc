"""Degenerate test predictions: a run that answers one class for every test example, or whose logits tie on every
test example (argmax then picks the first class for all of them). Such a run is flagged in its summary.json
(``degenerate``) and in every table that counts it; it still counts (it is what the method did). Runs archived
before the tie count existed can show the first kind only (their confusion matrix)."""

from __future__ import annotations

from typing import List, Optional


def degenerate(confusion: List[List[int]], tied: Optional[int] = None) -> Optional[str]:
    """Why the test predictions (``confusion``: gold x predicted counts; ``tied``: examples whose two highest logits
    tie) are degenerate; None when they are not."""
    total = sum(map(sum, confusion))
    if not total:
        return None
    if tied == total:
        return "tied logits on every test example"
    if sum(1 for column in zip(*confusion) if sum(column)) == 1:
        return "one class for every test example"
    return None

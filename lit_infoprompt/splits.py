"""How a split is named: in run folders (``16shot``, ``budget64``, ``fixed``) and in the report's words ("16-shot",
"budget 64"). The one place the protocol -> name mapping is written (``data.protocol``: per_class | budget |
fixed)."""

from __future__ import annotations

from typing import Optional


def split_folder(protocol: str, size: Optional[int]) -> str:
    """The split as run folders name it: ``16shot`` (per_class), ``budget64`` (budget), ``fixed``."""
    return {"per_class": f"{size}shot", "budget": f"budget{size}"}.get(protocol, protocol)


def split_words(protocol: str, size: Optional[int]) -> str:
    """The split as the report's headers write it: "16-shot", "budget 64", "fixed" (with its size when known)."""
    words = {"per_class": f"{size}-shot", "budget": f"budget {size}"}.get(protocol, protocol)
    return f"{words} {size}" if protocol not in ("per_class", "budget") and size is not None else words

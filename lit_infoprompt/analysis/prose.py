"""The report's prose that is not computed: named blocks of ``report_prose.md`` beside this file.

A block runs from its marker line ``<!-- block: <name> -->`` to the next marker; ``prose(name, **fields)`` returns it
with its ``{field}`` slots filled (``str.format``: a literal brace is written ``{{``). Editing the words of the report
is editing that file; the numbers and the sentences built from them stay in the report code.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Dict

from lit_infoprompt.errors import InputError

PROSE_FILE = Path(__file__).with_name("report_prose.md")
MARKER = re.compile(r"^<!-- block: ([a-z_]+) -->\n", re.M)


@lru_cache(maxsize=4)
def blocks(path: Path = PROSE_FILE) -> Dict[str, str]:
    """{name: text} of every block in the file (trailing blank lines dropped)."""
    parts = MARKER.split(path.read_text())
    return {name: body.rstrip("\n") for name, body in zip(parts[1::2], parts[2::2])}


def prose(name: str, path: Path = PROSE_FILE, **fields) -> str:
    """The block ``name`` with ``fields`` filled in; a missing block or field is one ``InputError`` line."""
    try:
        text = blocks(path)[name]
    except KeyError:
        raise InputError(f"{path}: no block '{name}' (blocks: {', '.join(blocks(path))})") from None
    try:
        return text.format(**fields)
    except (KeyError, IndexError) as err:
        raise InputError(f"{path}: block '{name}' asks for {err}, which the report does not give") from None

"""Templates: ``"{premise} ? <mask> , {hypothesis}"`` rendered to token ids with exactly one ``<mask>``.

Each piece (literal text, field value, mask) is tokenised on its own and the ids are concatenated, as in
LM-BFF, so that truncation can shorten the longest field and never cut the template or the ``<mask>``.
A piece that follows whitespace in the template is encoded with a leading space, which byte-level BPE
tokenizers (RoBERTa) need to produce the word-initial ``Ġword`` tokens; WordPiece ignores it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

from lit_infoprompt.errors import InputError

MASK = "<mask>"
_PIECE = re.compile(r"(\{\w+\}|<mask>)")


@dataclass(frozen=True)
class Piece:
    kind: str  # "text" | "field" | "mask"
    value: str  # literal text or field name
    space: bool  # encode with a leading space


def parse(template: str) -> List[Piece]:
    if template.count(MASK) != 1:
        raise InputError(f"template must contain exactly one {MASK}, found {template.count(MASK)}: {template!r}")
    pieces, space = [], False
    for raw in _PIECE.split(template):
        if raw == MASK:
            pieces.append(Piece("mask", "", space))
            space = False
        elif raw.startswith("{") and raw.endswith("}"):
            pieces.append(Piece("field", raw[1:-1], space))
            space = False
        else:
            if raw.strip():
                pieces.append(Piece("text", raw.strip(), space or raw[0].isspace()))
            space = (space and not raw.strip()) or (bool(raw) and raw[-1].isspace())
    return pieces


@dataclass
class Encoded:
    input_ids: List[int]  # <s> template </s>, no prompt slots
    mask_pos: int  # index of <mask> in input_ids
    truncated: bool  # a field was shortened to fit max_length


class TemplateEncoder:
    """Turns an example's fields into ids with a fixed budget of ``max_length - reserved`` tokens."""

    def __init__(self, template: str, tokenizer, max_length: int, reserved: int = 0):
        self.pieces = parse(template)
        self.fields = [p.value for p in self.pieces if p.kind == "field"]
        self.tokenizer = tokenizer
        self.literal_ids = {i: self._ids(p.value, p.space) for i, p in enumerate(self.pieces) if p.kind == "text"}
        fixed = 2 + 1 + sum(len(ids) for ids in self.literal_ids.values())  # <s>, </s>, <mask>, literals
        self.budget = max_length - reserved - fixed
        if self.budget < len(self.fields):
            raise InputError(f"model.max_length={max_length} leaves {self.budget} tokens for "
                             f"{len(self.fields)} fields after the template and {reserved} prompt slots")

    @property
    def mask_space(self) -> bool:
        """Whether the <mask> follows whitespace: label words are then encoded as word-initial tokens."""
        return next(p.space for p in self.pieces if p.kind == "mask")

    def _ids(self, text: str, space: bool) -> List[int]:
        return self.tokenizer.encode((" " if space else "") + text, add_special_tokens=False)

    def encode(self, fields: Dict[str, Any]) -> Encoded:
        values = {i: self._ids(str(fields[p.value]).strip(), p.space)
                  for i, p in enumerate(self.pieces) if p.kind == "field"}
        truncated = _truncate_longest(values, self.budget)
        ids, mask_pos = [self.tokenizer.cls_token_id], -1
        for i, piece in enumerate(self.pieces):
            if piece.kind == "mask":
                mask_pos = len(ids)
                ids.append(self.tokenizer.mask_token_id)
            else:
                ids += self.literal_ids[i] if piece.kind == "text" else values[i]
        ids.append(self.tokenizer.sep_token_id)
        return Encoded(ids, mask_pos, truncated)


def _truncate_longest(values: Dict[int, List[int]], budget: int) -> bool:
    """Cut tokens from the end of the currently longest field until all fields fit ``budget``."""
    excess = sum(len(v) for v in values.values()) - budget
    for _ in range(max(excess, 0)):
        longest = max(values, key=lambda k: len(values[k]))
        values[longest] = values[longest][:-1]
    return excess > 0


def label_word_ids(words: Sequence[str], tokenizer, space: bool) -> List[List[int]]:
    """Token ids of each label word; a word that encodes to nothing or to unknown tokens fails."""
    out = []
    for word in words:
        ids = tokenizer.encode((" " if space else "") + word, add_special_tokens=False) if word.strip() else []
        if not ids or tokenizer.unk_token_id in ids:
            raise InputError(f"label word {word!r} cannot be encoded by the tokenizer (got ids {ids})")
        out.append(ids)
    return out


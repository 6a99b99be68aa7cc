"""Which methods the paper's claims are about: ``conf/claims.yaml`` read into ``Roles``.

The analysis names no method: the baseline the claims are made against, the forms they are read for, and the arms
each control sets against each other come from that file (and the arms of each comparison from its experiment
file). A wrong or missing key is one ``error:`` line naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Tuple

from omegaconf import OmegaConf

from lit_infoprompt.config import CONF_DIR
from lit_infoprompt.errors import InputError

CLAIMS_FILE = CONF_DIR / "claims.yaml"


@dataclass(frozen=True)
class Roles:
    baseline: str  # what every claim is made against
    claimed: Tuple[str, ...]  # the forms each claim is read for, the glance's first
    label_words: str  # the form set against prompt tuning started at the label words
    bottleneck: Tuple[str, str]  # (with the information terms, the bottleneck without them)

    @property
    def headline(self) -> str:
        """The form the "At a glance" table compares with the baseline."""
        return self.claimed[0]


@lru_cache(maxsize=None)
def claim_roles(path: Path = CLAIMS_FILE) -> Roles:
    """The roles of ``path`` (default ``conf/claims.yaml``)."""
    try:
        raw = OmegaConf.to_container(OmegaConf.load(path))
        controls = raw["controls"]
        roles = Roles(str(raw["baseline"]), tuple(map(str, raw["claimed"])), str(controls["label_words"]),
                      tuple(map(str, controls["bottleneck"])))
    except FileNotFoundError:
        raise InputError(f"no claims file {path} (which methods the paper's claims are about)") from None
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{path}: expected baseline, claimed: [...] and controls: {{label_words, bottleneck: "
                         f"[with, without]}} ({type(err).__name__}: {err})") from None
    if not roles.claimed or len(roles.bottleneck) != 2:
        raise InputError(f"{path}: claimed needs at least one method and controls.bottleneck two")
    return roles

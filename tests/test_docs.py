"""Every command the README and the reference pages under docs/ show is checked against the project: a `make`
command's target and variables exist in the Makefile, and the CLI arguments it expands to (make -n) parse as the
CLI parses them (config keys and values, sweep keys, methods); a `python -m lit_infoprompt ...` command likewise.
Nothing is trained: this is the offline check that the docs' commands still work after a change."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "RESULTS.md")]
CLI = ("python", "-m", "lit_infoprompt")
SWEEPS = ("compare", "robustness")


def shell_vars(text: str) -> dict:
    """Variables a page defines for its commands (``C="..."``), and HOME."""
    found = dict(re.findall(r'\b([A-Z])="([^"]+)"', text))
    return {"HOME": os.environ.get("HOME", "/root"), **found}


def commands(path: Path) -> list[tuple[int, str]]:
    """(line, command) for each make / CLI command in a page: the lines of its bash blocks (continuations
    joined, comments dropped) and its inline code spans."""
    text = path.read_text()
    found = []
    for block in re.finditer(r"```bash\n(.*?)```", text, re.S):
        first = text[:block.start()].count("\n") + 2
        logical, start = "", first
        for number, line in enumerate(block.group(1).splitlines(), first):
            if not logical:
                start = number
            logical += line.rstrip("\\").strip() + " "
            if not line.rstrip().endswith("\\"):
                found.append((start, logical.strip()))
                logical = ""
    prose = re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    for span in re.finditer(r"`([^`]+)`", prose):
        found.append((prose[:span.start()].count("\n") + 1, " ".join(span.group(1).split())))
    out = []
    for number, command in found:
        for part in command.split("&&"):
            part = part.strip()
            if part.startswith("make ") or part.startswith(" ".join(CLI) + " "):
                out.append((number, part))
    return out


def words(command: str, variables: dict) -> list[str]:
    command = re.sub(r"\$\{?([A-Za-z_]+)\}?", lambda m: variables.get(m.group(1), m.group(0)), command)
    return shlex.split(command, comments=True)


def is_synopsis(tokens: list[str]) -> bool:
    """A usage line with placeholders (<dir>), optional parts ([...]) or elisions (...): names only."""
    return any(re.search(r"<[^>]*>|^\[|\]$|\.\.\.|\|", t) for t in tokens)


def makefile() -> tuple[set, set]:
    text = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"(?m)^([a-z][a-z-]*):", text))
    variables = set(re.findall(r"(?m)^([A-Z_]+) \?=", text))
    return targets, variables


def check_cli(command: str, args: list[str]) -> None:
    """Parse ``args`` as ``python -m lit_infoprompt <command>`` would, without running anything."""
    from lit_infoprompt.__main__ import COMMANDS
    from lit_infoprompt.sweep.args import arm_configs, parse_sweep, refuse_ddp
    from lit_infoprompt.config import load_config
    from lit_infoprompt.train.console import take_quiet_flag
    from lit_infoprompt.errors import InputError

    if command not in COMMANDS:
        raise InputError(f"unknown command {command!r}")
    if any(a in ("-h", "--help") for a in args):
        return  # the command's usage: printed before anything is parsed
    if command == "train":
        args, _ = take_quiet_flag(args)
        if any(a.startswith("resume=") for a in args):
            if len(args) != 1:
                raise InputError("resume= takes no other keys")
            return
        load_config(args)
    elif command in SWEEPS:
        sweep = parse_sweep(args)
        if command == "robustness" and len(sweep.prompt_lrs) > 1:
            raise InputError("robustness takes no prompt lr grid")
        if command == "robustness" and any(a.overrides or a.name != a.method for a in sweep.arms):
            raise InputError("robustness takes method presets, not arms")
        for config in arm_configs(sweep).values():  # every arm: its preset and overrides
            refuse_ddp(config)
    else:
        most = {"export-peft": 2, "report": 3, "theory": 1, "fetch-backbone": 0}[command]
        if len(args) > most or (command == "export-peft" and len(args) != 2):
            raise InputError(f"{command} takes {most} arguments, got {args}")


def check(tokens: list[str]) -> None:
    """Raises on a command that would not work."""
    from lit_infoprompt.errors import InputError

    synopsis = is_synopsis(tokens)
    if tuple(tokens[:3]) == CLI:
        from lit_infoprompt.__main__ import COMMANDS

        if len(tokens) < 4 or tokens[3] not in COMMANDS:
            raise InputError(f"unknown command {tokens[3:4]}")
        if not synopsis:
            check_cli(tokens[3], tokens[4:])
        return
    targets, variables = makefile()
    target = next((t for t in tokens[1:] if "=" not in t and not t.startswith("-")), None)
    if target is None and all(t.startswith("-") for t in tokens[1:]):
        return  # make's own options named in prose (`make -n`)
    if target not in targets:
        raise InputError(f"no make target {target!r}")
    for token in tokens[1:]:
        name = token.split("=", 1)[0].lstrip("[")
        if "=" in token and name.isupper() and name not in variables | {"TORCH", "PYTHON", "VENV"}:
            raise InputError(f"the Makefile has no variable {name}")
    if synopsis or target not in ("train", *SWEEPS):
        return
    dry = subprocess.run(["make", "-n", "-s", "--no-print-directory", *tokens[1:], "PY=PYBIN"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    if dry.returncode != 0:
        raise InputError(f"make -n failed: {dry.stderr.strip()}")
    recipe = dry.stdout.replace("\\\n", " ")
    line = next((x for x in recipe.splitlines() if x.startswith("PYBIN -m lit_infoprompt ")), None)
    if line is None:
        raise InputError(f"make -n printed no CLI call: {recipe[-500:]}")
    args = shlex.split(line)[3:]
    check_cli(args[0], args[1:])


def test_every_command_in_the_readme_and_the_docs_parses(monkeypatch, tmp_path):
    monkeypatch.setenv("LIT_INFOPROMPT_MODELS", str(tmp_path))  # nothing is fetched or loaded
    checked, failures = 0, []
    for page in PAGES:
        variables = shell_vars(page.read_text())
        for number, command in commands(page):
            try:
                check(words(command, variables))
                checked += 1
            except Exception as err:  # noqa: BLE001 - every failure is listed with its page and line
                failures.append(f"{page.relative_to(ROOT)}:{number}: {command}\n    -> {err}")
    assert not failures, "\n".join(failures)
    assert checked >= 40  # the pages show that many commands; far fewer means the extraction broke


def test_the_readme_links_every_reference_page_and_every_link_resolves():
    readme = (ROOT / "README.md").read_text()
    for page in PAGES[1:]:
        assert f"(docs/{page.name})" in readme, page.name
    assert "(docs/RESULTS.md)" in readme
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", page.read_text()):
            if target.startswith(("http:", "https:", "mailto:")) or "shared/" in target:
                continue  # web pages, and the shared docs beside the clone (not in a user's clone)
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)}: broken link {target}"


def test_the_readme_fits_on_two_screens():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 120, len(lines)


@pytest.mark.parametrize("command, message", [
    ("make train TASK=cb ARGS=\"nosuch.key=1\"", "nosuch"),
    ("make trian TASK=cb", "no make target"),
    ("make train TASKS=cb", "no variable TASKS"),
    ("make compare TASK=cb METHODS=\"prompt_tuning infopromt\"", "infopromt"),
    ("make compare TASK=cb LRS=\"1e-3 abc\"", "prompt_lrs"),
    ("python -m lit_infoprompt train task=nosuchtask", "nosuchtask"),
    ("python -m lit_infoprompt export-peft onlyone", "export-peft"),
    ("python -m lit_infoprompt trane", "trane"),
])
def test_a_broken_command_is_caught(command, message):
    with pytest.raises(Exception, match=message):
        check(words(command, {}))

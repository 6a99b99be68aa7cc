"""Write requirements.lock from `pip freeze --exclude-editable` (stdin) of a fresh install; `make lock` runs it.

Run with the python of the environment that was frozen: it reads the installed packages' requirements to find
which packages only torch needs. Those, and torch, stay out of the lock (TORCH picks the build, and pip resolves
torch's own requirements for it); everything else the project's `.[dev]` install brings is pinned with `==`.
Usage: pip freeze --exclude-editable | python scripts/lock.py "<TORCH requirement>" > requirements.lock
       python scripts/lock.py --python-note requirements.lock   (`make env`: a note where this Python is another)
"""

import datetime
import importlib.metadata as md
import platform
import re
import sys
import textwrap

PROJECT = "lit_infoprompt"
EXTRAS = ("dev",)
# Left out even where the metadata walk below would not find them (a build installed outside pip's view):
# torch's CUDA and ROCm companions.
ALWAYS_OUT = ("torch", "triton")
ALWAYS_OUT_PREFIXES = ("nvidia-", "cuda-", "pytorch-triton")


def python_note(lock):
    """One line where the lock was made with another Python minor version than this one; stdlib only."""
    made = re.search(r"^# made with: Python (\d+\.\d+)", open(lock, encoding="utf-8").read(), re.M)
    here = platform.python_version()
    if made and not here.startswith(made[1] + "."):
        print(f"note: {lock} was made with Python {made[1]}, this is {here}; where pip finds no wheel for a pin, "
              "`make env-latest` installs the newest versions instead, or `make lock` rewrites the lock")


def requirements(dist_name, extras=()):
    """Canonical names of what `dist_name[extras]` requires on this interpreter, with their extras."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    try:
        reqs = md.requires(dist_name) or []
    except md.PackageNotFoundError:
        return []
    out = []
    for text in reqs:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
            out.append((canonicalize_name(req.name), tuple(sorted(req.extras)), str(req)))
    return out


def closure(roots, stop=()):
    """Every package reachable from roots ((name, extras) pairs) through requirements, not walking past stop."""
    seen, todo = set(), list(roots)
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        if name in stop:
            continue
        todo += [(n, e) for n, e, _ in requirements(name, extras)]
    return {name for name, _ in seen}


def main():
    if sys.argv[1:2] == ["--python-note"]:
        return python_note(sys.argv[2])
    from packaging.utils import canonicalize_name

    torch_req = sys.argv[1] if len(sys.argv) > 1 else "torch"
    frozen = [line.strip() for line in sys.stdin if line.strip() and not line.startswith("#")]
    bad = [line for line in frozen if "==" not in line or " @ " in line]
    if bad:
        sys.exit(f"lock.py: not a `name==version` line, cannot be a constraint: {bad}")

    project = [(n, e) for n, e, _ in requirements(PROJECT, EXTRAS)]
    if not project:
        sys.exit(f"lock.py: {PROJECT} is not installed in {sys.prefix}")
    torch_side = closure([("torch", ())])
    others = closure([r for r in project if r[0] != "torch"], stop={"torch"})
    torch_only = (torch_side - others) | {"torch"}
    shared = sorted((torch_side & others) - {"torch"})
    torch_asks = {n: s for n, _, s in requirements("torch")}
    users = {n: sorted(d for d in others - {"torch"} if n in {r for r, _, _ in requirements(d)}) for n in shared}

    pins, left_out = [], set()
    for line in frozen:
        name = canonicalize_name(line.split("==")[0])
        if name in torch_only or name in ALWAYS_OUT or name.startswith(ALWAYS_OUT_PREFIXES):
            left_out.add(name)
        else:
            pins.append(line)
    # pip freeze hides pip, setuptools, wheel; torch's setuptools requirement is torch's, like the rest.
    left_out |= {n for n in torch_only if n in {"setuptools", "wheel"}}

    py = platform.python_version()
    left = ", ".join(sorted(left_out - {"torch"}))
    asks = ", ".join(torch_asks.get(n, n) for n in shared)
    used = "; ".join(f"{n}: {', '.join(users[n][:3])}{' ...' if len(users[n]) > 3 else ''}" for n in shared)
    text = [
        f"requirements.lock: the exact versions `make env` installs ({len(pins)} pins), as pip constraints: "
        '`pip install -c requirements.lock "$TORCH"`, then `pip install -c requirements.lock -e ".[dev]"`.',
        "Written by `make lock` (scripts/lock.py): the newest versions within pyproject.toml's ranges that day, "
        f"installed in a fresh venv. Another Python than {'.'.join(py.split('.')[:2])} may lack wheels for some "
        "pins: then `make env-latest`, or `make lock PYTHON=<that python>`.",
        f"Not pinned: torch, and what only torch requires ({left}; with a CUDA build also nvidia-*, triton). "
        "TORCH picks the build and pip resolves these for it: the project's other requirements do not use them, "
        "and torch pins some exactly (sympy==1.13.1 in torch 2.5 and 2.6; nvidia-*==, triton== in CUDA builds), "
        "so a pin here would clash with another TORCH.",
        f"Pinned although torch requires them too ({asks}): the project's other requirements use them as well "
        f"({used}). Torch asks lower bounds only, so another TORCH accepts these pins; where one does not, "
        'pip says so: regenerate with `TORCH="<requirement>" make lock`.',
    ]
    lines = [f"# {line}" for para in text for line in textwrap.wrap(para, 114, subsequent_indent="  ")]
    lines.insert(2, f"# made with: Python {py} ({platform.system()} {platform.machine()}), pip {md.version('pip')}, "
                 f"TORCH=\"{torch_req}\" (torch {md.version('torch')}), on {datetime.date.today().isoformat()}")
    print("\n".join(lines + pins))


if __name__ == "__main__":
    main()

"""Prepare here, where pip works, what a GPU machine without network lacks for ``gpu_check.py`` (``make gpu-bundle``).

Into ``.gpu-bundle/`` (git-ignored; a device call carries it):

  whl/                     wheels of what ``python -m lit_infoprompt train`` imports at module level and the GPU
                           image lacks: omegaconf (PyYAML, its one requirement, is there). wandb, datasets and
                           submitit are imported only when used (logger=wandb, a hub download, launcher=submitit).
  all-MiniLM-L6-v2-bf16/   the offline fallback backbone with its weights in bfloat16 (45 MB instead of 90);
                           the runs cast them to model.dtype (float32 by default)
  manifest.json            every file with its size and sha256, the total, and the wheels' requirements

The bundle must stay under ``--limit-mib`` (60) and, with the repository's own files, under the 64 MiB a device
call carries; the script says both sizes and fails when either is over.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from lit_infoprompt.hub import FALLBACK_NAME, models_dir, sha256

ROOT = Path(__file__).resolve().parent.parent
WHEELS = ["omegaconf"]  # at the installed version (the lock's, after make env)
MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
DEVICE_PYTHON = "3.12"  # the GPU image's python3 (KINDS.md)
LIMIT_MIB = 60.0
CARRY_MIB = 64.0  # what one device call carries: the working tree and the carried paths together
MIB = 2**20


def wheel_requirements(wheel: Path) -> list:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(name).decode().splitlines()
    return [line.split(":", 1)[1].strip() for line in lines
            if line.startswith("Requires-Dist:") and "extra ==" not in line]


def download_wheels(folder: Path, names) -> list:
    """One wheel per name, at the installed version, for the device's Python (pure wheels fit any)."""
    folder.mkdir(parents=True, exist_ok=True)
    wheels = []
    for name in names:
        version = metadata.version(name)
        stem = f"{name.replace('-', '_')}-{version}-"
        found = [w for w in folder.glob("*.whl") if w.name.lower().startswith(stem.lower())]
        if not found:
            for stale in folder.glob(f"{name.replace('-', '_')}-*.whl"):
                stale.unlink()  # one version of each: two stop the install there
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                       "--python-version", DEVICE_PYTHON, "--implementation", "cp",
                       *[arg for platform in PLATFORMS for arg in ("--platform", platform)],
                       "-d", str(folder), f"{name}=={version}"]
            subprocess.run(command, check=True)
            found = [w for w in folder.glob("*.whl") if w.name.lower().startswith(stem.lower())]
        wheel = found[0]
        wheels.append({"name": name, "version": version, "file": f"whl/{wheel.name}",
                       "requires": wheel_requirements(wheel)})
    return wheels


def convert_model(source: Path, target: Path) -> dict:
    """The model's config and tokenizer files, and its floating-point weights in bfloat16."""
    import torch
    from safetensors.torch import load_file, save_file

    if not (source / "model.safetensors").is_file():
        raise SystemExit(f"gpu-bundle: no model.safetensors in {source}: `make env` (or `python -m lit_infoprompt "
                         f"fetch-backbone`) unpacks the fallback backbone there, or name one with --model")
    target.mkdir(parents=True, exist_ok=True)
    weights = target / "model.safetensors"
    if not weights.is_file() or weights.stat().st_mtime < (source / "model.safetensors").stat().st_mtime:
        tensors = load_file(source / "model.safetensors")
        tensors = {k: (v.to(torch.bfloat16) if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}
        save_file(tensors, weights, metadata={"format": "pt"})
    for name in MODEL_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
    config = json.loads((target / "config.json").read_text())
    config.pop("torch_dtype", None)
    config["dtype"] = "bfloat16"
    (target / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return {"source": str(source), "folder": target.name, "dtype": "bfloat16",
            "source_sha256": sha256(source / "model.safetensors")}


def tree_mib(root: Path) -> float:
    """The repository's files that travel with a device call: tracked, and untracked but not ignored."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return sum((root / name).stat().st_size for name in listed if name and (root / name).is_file()) / MIB


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / ".gpu-bundle"))
    p.add_argument("--model", default=str(models_dir() / FALLBACK_NAME), help="the model folder to carry in bf16")
    p.add_argument("--limit-mib", type=float, default=LIMIT_MIB)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wheels = download_wheels(out / "whl", WHEELS)
    model = convert_model(Path(args.model).expanduser(), out / f"{FALLBACK_NAME}-bf16")
    files = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file() and p.name != "manifest.json"):
        files[str(path.relative_to(out))] = {"bytes": path.stat().st_size, "sha256": sha256(path)}
    total = sum(f["bytes"] for f in files.values()) / MIB
    tree = tree_mib(ROOT)
    manifest = {"wheels": wheels, "model": model, "files": files, "total_mib": round(total, 2),
                "repository_mib": round(tree, 2), "limit_mib": args.limit_mib}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"gpu-bundle: {out} {total:.1f} MiB ({len(files)} files: {', '.join(w['file'] for w in wheels)}, "
          f"{model['folder']}); with the repository's {tree:.1f} MiB a device call carries {total + tree:.1f} of "
          f"{CARRY_MIB:.0f} MiB")
    if total > args.limit_mib or total + tree > CARRY_MIB:
        print(f"gpu-bundle: too large (limit {args.limit_mib:.0f} MiB for the bundle, {CARRY_MIB:.0f} MiB in all)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

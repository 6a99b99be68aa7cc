"""The console of a run: one bar over optimiser steps with the last dev score, one table at the end, no
dependency noise; ``-q`` for scripts. The filters drop named messages only, never the project's own warnings."""

import json
import logging
import os
import subprocess
import sys
import warnings

from conftest import tiny_overrides

NOISE = ("💡", "litlogger", "LeafSpec", "GPU available", "TPU available", "FLOPs", "Epoch 0", "Total params",
         "`Trainer.fit` stopped", "Restoring states", "Loaded model weights", '"test_f1_macro"')


def cli(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "default"}
    return subprocess.run([sys.executable, "-m", "lit_infoprompt", "train", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_a_run_prints_the_step_bar_and_the_end_table_and_no_dependency_noise(roberta_dir, tmp_path):
    args = [a for a in tiny_overrides(roberta_dir, tmp_path / "runs") if a != "trainer.progress_bar=false"]
    result = cli(*args, "trainer.progress_bar=true")
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    for noise in NOISE:
        assert noise not in output, noise
    run_dir = tmp_path / "runs/cb/4shot/prompt_tuning/seed13/version_0"
    summary = json.loads((run_dir / "summary.json").read_text())
    bar = result.stderr.replace("\r", "\n")
    assert "step 6/6" in bar  # counts optimiser steps up to max_steps
    curve = (run_dir / "curve.csv").read_text().splitlines()
    last = dict(zip(curve[0].split(","), curve[-1].split(",")))
    assert f"dev acc {float(last['val/acc']):.4f} @ step 6" in bar, bar[-2000:]  # the last evaluation's score
    table = {line[:8].strip(): line[8:].strip() for line in result.stdout.strip().splitlines()}  # 8 = "best dev"
    assert list(table) == ["task", "method", "backbone", "best dev", "test", "seconds", "run dir"]
    assert table["method"] == "prompt_tuning, seed 13"
    assert table["best dev"].startswith(f"acc {summary['best_dev']:.4f} at step {summary['best_step']} of 6")
    assert f"acc {summary['test_acc']:.4f}" in table["test"] and f"f1_macro {summary['test_f1_macro']:.4f}" in table["test"]
    assert table["run dir"].startswith(str(run_dir))
    sizes = summary["sizes"]
    assert table["task"] == f"cb, 4 per class (train {sizes['train']}, dev {sizes['dev']}, test {sizes['test']})"


def test_quiet_prints_one_result_line_and_no_bar(roberta_dir, tmp_path):
    args = [a for a in tiny_overrides(roberta_dir, tmp_path / "runs") if a != "trainer.progress_bar=false"]
    result = cli("-q", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    run_dir = tmp_path / "runs/cb/4shot/prompt_tuning/seed13/version_0"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(lines) == 1 and lines[0].endswith(f"-> {run_dir}")
    assert lines[0].startswith(f"test_acc {summary['test_acc']:.4f}  test_f1_macro {summary['test_f1_macro']:.4f}")
    assert "step 6/6" not in result.stderr and "%|" not in result.stderr


def test_the_filters_drop_only_the_named_messages(caplog):
    from lit_infoprompt.train.console import quiet_dependencies

    quiet_dependencies()
    quiet_dependencies()  # idempotent: one filter per message
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    assert len(rank_zero.filters) == len({f.pattern.pattern for f in rank_zero.filters})
    with caplog.at_level(logging.INFO, logger="lightning.pytorch.utilities.rank_zero"):
        rank_zero.info("💡 Tip: For seamless cloud logging, try installing litlogger")
        rank_zero.info("GPU available: False, used: False")
        rank_zero.info("Restored all states from the checkpoint at last.ckpt")  # a resume says so: kept
        rank_zero.warning("GPU available but not used. You can set it by doing `Trainer(accelerator='gpu')`.")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["Restored all states from the checkpoint at last.ckpt",
                        "GPU available but not used. You can set it by doing `Trainer(accelerator='gpu')`."]
    connector = logging.getLogger("lightning.pytorch.trainer.connectors.checkpoint_connector")
    with caplog.at_level(logging.INFO, logger=connector.name):
        connector.info("`weights_only` was not set, defaulting to `False`.")
        connector.info("`weights_only` was set to True")  # anything else from it still prints
    assert [r.getMessage() for r in caplog.records][len(messages):] == ["`weights_only` was set to True"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_dependencies()  # the filters go in front of "always"
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning)
        warnings.warn("few-shot split: class 'neutral' has 16 examples: dev gets 0 of 16")
    assert [str(w.message) for w in caught] == ["few-shot split: class 'neutral' has 16 examples: dev gets 0 of 16"]


def test_the_bar_ends_on_the_last_evaluation_when_val_every_passes_max_steps(roberta_dir, tmp_path):
    """With val_every > max_steps the only evaluations are step 0 and the last step (after fit): the bar must not
    end on step 0's score."""
    args = [a for a in tiny_overrides(roberta_dir, tmp_path / "runs", "trainer.val_every=10")
            if a != "trainer.progress_bar=false"]
    result = cli(*args, "trainer.progress_bar=true")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "runs/cb/4shot/prompt_tuning/seed13/version_0"
    curve = (run_dir / "curve.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in curve[1:]] == ["0", "6"]
    last = dict(zip(curve[0].split(","), curve[-1].split(",")))
    bar = result.stderr.replace("\r", "\n").strip().splitlines()
    final = [line for line in bar if "step 6/6" in line][-1]
    assert final.endswith(f"dev acc {float(last['val/acc']):.4f} @ step 6"), final


def test_the_backbone_notice_prints_once_and_not_with_quiet(roberta_dir, tmp_path, monkeypatch, capsys):
    from pathlib import Path

    from lit_infoprompt import hub
    from lit_infoprompt.__main__ import main
    monkeypatch.setattr(hub, "_resolved", {})
    monkeypatch.setattr(hub, "in_hf_cache", lambda name: False)
    monkeypatch.setattr(hub, "hub_reachable", lambda *a, **k: False)
    monkeypatch.setattr(hub, "fetch_fallback", lambda: Path(roberta_dir))  # stands in for all-MiniLM-L6-v2
    args = [a for a in tiny_overrides("auto", tmp_path / "runs") if a != "trainer.progress_bar=false"]
    handler = logging.StreamHandler(sys.stderr)  # the CLI's logging (conftest leaves records to caplog)
    logging.getLogger("lit_infoprompt").addHandler(handler)
    try:
        assert main(["train", *args, "trainer.progress_bar=false"]) == 0
        out = capsys.readouterr()
        assert (out.out + out.err).count("NOTICE backbone") == 1
        monkeypatch.setattr(hub, "_resolved", {})
        assert main(["train", "-q", *args]) == 0
        out = capsys.readouterr()
        assert "NOTICE backbone" not in out.out + out.err
        lines = out.out.strip().splitlines()
        assert len(lines) == 1 and "(a fallback: summary.json's backbone_notice)" in lines[0]
    finally:
        logging.getLogger("lit_infoprompt").removeHandler(handler)

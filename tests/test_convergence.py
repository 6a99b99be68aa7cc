"""Convergence statistics by hand, and what a run writes about its curve."""

import csv

import pytest
import torch

from conftest import tiny_roberta
from lit_infoprompt.model.backbone import from_pretrained_model
from lit_infoprompt.tasks.batching import StepBatchSampler, eval_shard
from lit_infoprompt.convergence import area_under_curve, best_row, curve_summary, steps_to_target
from lit_infoprompt.errors import NonFiniteLoss
from lit_infoprompt.model.module import PromptClassifier
from lit_infoprompt.train.runner import run

ROWS = [{"step": 0, "m": 0.2}, {"step": 10, "m": 0.6}, {"step": 20, "m": 0.6}, {"step": 40, "m": 0.5}]


def test_curve_statistics_by_hand():
    assert best_row(ROWS, "m")["step"] == 10  # first of equal scores
    # trapezoids from the first trained evaluation (step 10): 10*0.6 + 20*0.55 = 17, over 30 steps
    assert area_under_curve(ROWS, "m") == pytest.approx(17 / 30)
    assert steps_to_target(ROWS, "m", 0.55) == 10 and steps_to_target(ROWS, "m", 0.9) is None
    assert steps_to_target(ROWS, "m", None) is None
    summary = curve_summary(ROWS, "m", 0.5)
    assert (summary["final_dev"], summary["best_step"], summary["steps_to_target"]) == (0.5, 10, 10)


def test_step_zero_counts_in_no_statistic():
    rows = [{"step": 0, "m": 0.9}, {"step": 10, "m": 0.5}, {"step": 20, "m": 0.7}]
    summary = curve_summary(rows, "m", 0.8)
    assert summary["dev_step0"] == 0.9  # reported, not selected
    assert (summary["best_dev"], summary["best_step"]) == (0.7, 20)
    assert summary["steps_to_target"] is None  # only step 0 was above 0.8: not reached by training
    assert summary["dev_auc"] == pytest.approx(0.6)


@pytest.mark.parametrize("method", ["prompt_tuning", "infoprompt", "prompt_tuning_bottleneck", "infoprompt_head",
                                    "infoprompt_rep"])
def test_the_best_step_is_the_step_of_the_tested_checkpoint(tiny_config, method):
    # learning rates ~0 keep every dev score equal to step 0's: selection must still pick a saved state
    summary = run(tiny_config(f"method={method}", "optim.prompt_lr=1e-12", "optim.head_lr=1e-12"))
    checkpoint = torch.load(f"{summary['run_dir']}/checkpoints/best.ckpt", map_location="cpu", weights_only=False)
    assert summary["best_step"] == checkpoint["global_step"] > 0
    best = next(cb for key, cb in checkpoint["callbacks"].items() if "val/" in key)["best_model_score"]
    assert summary["best_dev"] == pytest.approx(float(best))


def test_step_batches_are_the_same_for_any_start_and_any_number_of_processes():
    single = list(StepBatchSampler(10, 4, max_steps=6, seed=3))
    resumed = list(StepBatchSampler(10, 4, max_steps=6, seed=3, start_step=4))
    assert resumed == single[4:]
    halves = [list(StepBatchSampler(10, 2, max_steps=6, seed=3, rank=r, world_size=2)) for r in (0, 1)]
    assert [a + b for a, b in zip(*halves)] == single
    seen = [i for batch in single for i in batch]
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:20]) == list(range(10))  # each pass is a permutation


def test_eval_shards_cover_every_row_once():
    shards = [eval_shard(7, r, 3) for r in range(3)]
    assert sorted(i for s in shards for i in s) == list(range(7))


def test_run_writes_curve_rows_with_train_losses_and_the_summary(tiny_config, tokenizer):
    backbone = from_pretrained_model(tiny_roberta(tokenizer), mlm_head=True, dropout=False)
    summary = run(tiny_config("method=infoprompt", "trainer.max_steps=7", "trainer.target_dev=0.0"), backbone, tokenizer)
    rows = list(csv.DictReader(open(summary["run_dir"] + "/curve.csv")))
    assert [int(r["step"]) for r in rows] == [0, 3, 6, 7]  # step 0, every 3 steps, and the last step
    assert rows[0]["train/mi/head"] == "" and float(rows[1]["train/mi/head"]) > 0
    assert int(rows[2]["examples"]) == 6 * 4
    assert summary["final_dev"] == float(rows[-1]["val/acc"]) and summary["steps_to_target"] == 3  # not step 0
    assert 0 <= summary["dev_auc"] <= 1 and summary["best_step"] in (3, 6, 7)
    assert summary["train_seconds"] <= summary["seconds"]  # the clock is not rolled back by testing best.ckpt
    assert summary["code"]["identity"] and summary["code"]["commit"]  # provenance


def test_estimator_diagnostics_are_logged_per_evaluation_interval(tiny_config, tokenizer):
    import math

    backbone = from_pretrained_model(tiny_roberta(tokenizer), mlm_head=True, dropout=False)
    summary = run(tiny_config("method=infoprompt", "method.bottleneck_dim=8"), backbone, tokenizer)
    rows = list(csv.DictReader(open(summary["run_dir"] + "/curve.csv")))
    assert rows[0]["diag/active_dims"] == ""  # step 0: nothing trained yet
    for row in rows[1:]:
        head, rep = float(row["diag/mi_head_nats"]), float(row["diag/mi_rep_nats"])
        # an InfoNCE estimate lies in [-inf, log(M + 1)]: M = 4 x batch 4 = 16 prompt-free negatives for L_rep
        assert head < math.log(64 + 1) and rep <= math.log(16 + 1) + 1e-6
        assert 0 <= int(row["diag/active_dims"]) <= 8 and float(row["diag/sigma"]) >= math.exp(-2) - 1e-6
        assert float(row["diag/kl_per_dim"]) >= 0
    logged = list(csv.DictReader(open(summary["run_dir"] + "/metrics.csv")))
    assert [r["diag/active_dims"] for r in logged if r.get("diag/active_dims")] == [r["diag/active_dims"] for r in rows[1:]]


def test_diagnostics_row_counts_active_dimensions():
    from lit_infoprompt.model.bottleneck import diagnostics_row

    row = diagnostics_row({"kl_dims": torch.tensor([0.0, 0.005, 0.02, 1.5]), "sigma": torch.tensor(0.9),
                           "mi_head_nats": torch.tensor(0.0)})
    assert row == {"diag/mi_head_nats": 0.0, "diag/sigma": pytest.approx(0.9), "diag/kl_per_dim": pytest.approx(0.38125),
                   "diag/active_dims": 2}


def test_non_finite_loss_stops_naming_the_term_and_keeps_the_last_checkpoint(tiny_config, tokenizer, monkeypatch):
    backbone = from_pretrained_model(tiny_roberta(tokenizer), mlm_head=True, dropout=False)
    losses = PromptClassifier.losses

    def poisoned(self, batch):
        terms = losses(self, batch)
        if self.global_step >= 4:
            terms["mi/head"] = terms["mi/head"] * float("nan")
        return terms
    monkeypatch.setattr(PromptClassifier, "losses", poisoned)
    config = tiny_config("method=infoprompt_head", "trainer.val_every=2")
    with pytest.raises(NonFiniteLoss, match="train/mi/head at step 4"):
        run(config, backbone, tokenizer)
    run_dir = next((config.out_dir and __import__("pathlib").Path(config.out_dir)).rglob("version_0"))
    assert (run_dir / "checkpoints/last.ckpt").is_file() and not (run_dir / "summary.json").exists()
    assert torch.load(run_dir / "checkpoints/last.ckpt", weights_only=False)["global_step"] == 4


def test_curve_state_is_restored_on_resume_but_not_by_testing_a_checkpoint(tmp_path):
    from types import SimpleNamespace

    from lit_infoprompt.train.callbacks import DevCurve
    curve = DevCurve(tmp_path / "curve.csv", batch_size=4)
    curve.rows = [{"step": 0, "val/acc": 0.1}, {"step": 10, "val/acc": 0.5}]
    at_best = curve.state_dict()  # what best.ckpt holds
    curve.rows.append({"step": 20, "val/acc": 0.4})
    curve.load_state_dict(at_best)  # trainer.test(ckpt_path=best) does this
    assert [r["step"] for r in curve.rows] == [0, 10, 20]
    resumed = DevCurve(tmp_path / "curve.csv", batch_size=4)
    resumed.load_state_dict(at_best)  # trainer.fit(ckpt_path=last) does this, then starts the fit
    resumed.on_fit_start(SimpleNamespace(), None)
    assert [r["step"] for r in resumed.rows] == [0, 10] and resumed.elapsed == at_best["elapsed"]

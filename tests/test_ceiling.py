"""Each InfoNCE term read against its ceiling log(M+1): the fraction (recorded, or derived from the config for the
representation term of a run that predates it), the inert / in between / saturated verdicts at the last and the early
evaluation, the summary's table and sentences, and the plot's second panel, all against hand computations."""

from __future__ import annotations

import json
import math

import pytest

from lit_infoprompt.analysis.ceiling import (NOT_RECORDED, fraction_column, rep_ceiling_nats, term_against_ceiling,
                                             ceiling_verdict, with_fractions)
from lit_infoprompt.analysis.comparison_files import write_comparison
from lit_infoprompt.config import load_config, to_yaml
from lit_infoprompt.convergence import EARLY_STEP, INERT_FRACTION, SATURATED_FRACTION

ARCHIVED = {"method": {"num_negatives": 0}, "data": {"batch_size": 8}}  # m = 4 x 8 = 32


def recorded_rows(term: str, fractions, ceiling: float = 4.0, steps=(50, 100, 150)):
    """A run that wrote the ceiling columns: estimate = fraction x ceiling at each step (step 0 has no diagnostics)."""
    rows = [{"step": 0, "val/acc": 0.3}]
    for step, f in zip(steps, fractions):
        rows.append({"step": step, "val/acc": 0.5, "train/loss/ce": 1.0 - step / 1000, f"diag/mi_{term}_nats": f * ceiling,
                     f"diag/mi_{term}_ceiling_nats": ceiling, fraction_column(term): f})
    return rows


def archived_rows(head=None, rep=None, steps=(50, 100, 150)):
    """A run made before the ceiling columns: estimates only."""
    rows = [{"step": 0, "val/acc": 0.3}]
    for i, step in enumerate(steps):
        row = {"step": step, "val/acc": 0.5, "train/loss/ce": 2.0 - step / 100}
        if head is not None:
            row["diag/mi_head_nats"] = head[i]
        if rep is not None:
            row["diag/mi_rep_nats"] = rep[i]
        rows.append(row)
    return rows


def test_the_thresholds_and_the_verdict_at_their_edges():
    assert (INERT_FRACTION, SATURATED_FRACTION, EARLY_STEP) == (0.05, 0.95, 100)
    assert ceiling_verdict(-0.001) == ceiling_verdict(0.0) == ceiling_verdict(0.0499) == "inert"
    # "below 5 %", "above 95 %": strict
    assert ceiling_verdict(0.05) == ceiling_verdict(0.5) == ceiling_verdict(0.95) == "in between"
    assert ceiling_verdict(0.9501) == ceiling_verdict(1.0) == "saturated"
    assert ceiling_verdict(None) == NOT_RECORDED


def test_the_representation_ceiling_is_derived_from_the_config_and_the_head_ceiling_is_not():
    assert rep_ceiling_nats(ARCHIVED) == pytest.approx(math.log(33))
    assert rep_ceiling_nats({"method": {"num_negatives": 9}, "data": {"batch_size": 8}}) == pytest.approx(math.log(10))
    rows = with_fractions({"config": ARCHIVED, "curve": archived_rows(head=[-0.005] * 3, rep=[0.35, 1.75, 3.4])})
    assert "diag/mi_rep_frac_of_ceiling" not in rows[0]  # step 0: no estimate, no fraction
    assert [r["diag/mi_rep_frac_of_ceiling"] for r in rows[1:]] == pytest.approx(
        [0.35 / 3.4965076, 1.75 / 3.4965076, 3.4 / 3.4965076])
    assert all("diag/mi_head_frac_of_ceiling" not in r and "diag/mi_head_ceiling_nats" not in r for r in rows)
    # a recorded fraction is kept as the run wrote it (the mean of per-batch ratios), never recomputed
    run = {"config": ARCHIVED, "curve": [{"step": 50, "diag/mi_head_nats": 1.0, "diag/mi_head_ceiling_nats": 4.0,
                                          "diag/mi_head_frac_of_ceiling": 0.3}]}
    assert with_fractions(run)[0]["diag/mi_head_frac_of_ceiling"] == 0.3
    # a recorded ceiling without its fraction: estimate / ceiling
    run["curve"][0].pop("diag/mi_head_frac_of_ceiling")
    assert with_fractions(run)[0]["diag/mi_head_frac_of_ceiling"] == 0.25
    assert "diag/mi_head_frac_of_ceiling" not in run["curve"][0]  # the run's own rows are untouched


def test_inert_saturated_and_in_between_runs_by_hand():
    runs = [{"config": ARCHIVED, "curve": recorded_rows("head", f)} for f in
            ((0.01, 0.02, 0.03),   # inert at step 100 and at the end
             (0.50, 0.90, 0.97),   # in between at step 100, saturated at the end
             (0.10, 0.20, 0.50))]  # in between at both
    c = term_against_ceiling(runs, "head")
    assert c["runs"] == 3 and c["recorded_runs"] == 3 and c["derived_runs"] == 0
    assert c["first"] == pytest.approx((0.01 + 0.50 + 0.10) / 3)
    assert c["early"] == pytest.approx((0.02 + 0.90 + 0.20) / 3) and c["early_steps"] == [100]
    assert c["last"] == pytest.approx((0.03 + 0.97 + 0.50) / 3)
    assert c["ceiling_nats"] == pytest.approx(4.0)
    assert c["last_verdicts"] == {"inert": 1, "in between": 1, "saturated": 1}
    assert c["early_verdicts"] == {"inert": 1, "in between": 2}
    assert term_against_ceiling(runs, "rep") is None  # no run has the term


def test_the_early_evaluation_is_the_first_at_or_after_step_100():
    run = {"config": ARCHIVED, "curve": recorded_rows("rep", (0.1, 0.2, 0.99), steps=(60, 120, 180))}
    c = term_against_ceiling([run], "rep")
    assert c["early_steps"] == [120] and c["early"] == pytest.approx(0.2)
    short = {"config": ARCHIVED, "curve": recorded_rows("rep", (0.1, 0.99), steps=(30, 60))}
    c = term_against_ceiling([short], "rep")
    assert c["early"] is None and c["early_verdicts"] == {} and c["last_verdicts"] == {"saturated": 1}


def test_an_archived_run_has_no_head_verdict_and_a_derived_rep_verdict():
    runs = [{"config": ARCHIVED, "curve": archived_rows(head=[-0.005, -0.004, -0.004], rep=[0.1, 3.0, 3.4])}
            for _ in range(2)]
    head = term_against_ceiling(runs, "head")
    assert head["last"] is None and head["first"] is None and head["ceiling_nats"] is None
    assert head["last_verdicts"] == {NOT_RECORDED: 2} and head["recorded_runs"] == 0 and head["derived_runs"] == 0
    rep = term_against_ceiling(runs, "rep")
    assert rep["derived_runs"] == 2 and rep["config_negatives"] == [32]
    assert rep["last"] == pytest.approx(3.4 / math.log(33))  # 0.9724: saturated
    assert rep["early"] == pytest.approx(3.0 / math.log(33))  # 0.8580: in between
    assert rep["last_verdicts"] == {"saturated": 2} and rep["early_verdicts"] == {"in between": 2}


def write_run(root, method, seed, curve, **method_changes):
    config = load_config([f"method={method}", f"seed={seed}"])
    for name, value in method_changes.items():
        setattr(config.method, name, value)
    run_dir = root / method / f"seed{seed}"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(to_yaml(config))
    columns = list(dict.fromkeys(k for row in curve for k in row))
    (run_dir / "curve.csv").write_text(",".join(columns) + "\n" + "".join(
        ",".join("" if k not in row else str(row[k]) for k in columns) + "\n" for row in curve))
    (run_dir / "summary.json").write_text(json.dumps({
        "task": "cb", "method": method, "seed": seed, "shots": 16, "protocol": "per_class", "split_size": 16,
        "backbone": "tiny", "dev_metric": "acc", "test_acc": 0.5 + seed / 1000, "split_checksum": f"data{seed}"}))
    return run_dir


def test_the_summary_says_inert_saturated_and_not_recorded(tmp_path):
    """Archived InfoPrompt runs (no ceiling columns, m = 9 negatives: ceiling log 10) beside new head-only runs that
    recorded their ceiling: the table's % columns and the sentences say what each term did, in how many runs."""
    dirs = []
    for seed in (13, 21):
        dirs.append(write_run(tmp_path, "prompt_tuning", seed, archived_rows()))
        dirs.append(write_run(tmp_path, "infoprompt", seed, archived_rows(head=[-0.005] * 3, rep=[0.2, 1.0, 2.3]),
                              num_negatives=9))
        dirs.append(write_run(tmp_path, "infoprompt_head", seed, recorded_rows("head", (0.01, 0.02, 0.01 * seed / 13))))
    result = write_comparison(dirs, ["prompt_tuning", "infoprompt", "infoprompt_head"], tmp_path / "out", None)
    rep = result["methods"]["infoprompt"]["diagnostics"]["mi_rep_nats"]["ceiling"]
    assert rep["last"] == pytest.approx(2.3 / math.log(10)) and rep["last_verdicts"] == {"saturated": 2}
    assert rep["early"] == pytest.approx(1.0 / math.log(10)) and rep["early_verdicts"] == {"in between": 2}
    text = (tmp_path / "out/summary.md").read_text()
    assert "| method | head MI (nats) | head, % of ceiling | rep MI (nats) | rep, % of ceiling |" in text
    assert ("| infoprompt | -0.005 → -0.005 | not recorded; inert 2/2 (below 5 % of any ceiling) | 0.200 → 2.300 | "
            "8.7 → 99.9: saturated 2/2 |") in text
    # seed 13 ends at 1 % (inert), seed 21 at 1.6 % (inert); both 2 % at step 100
    assert "| infoprompt_head | 0.040 → 0.052 | 1.0 → 1.3: inert 2/2 |  |  |" in text
    assert ("`infoprompt`: the head loss's MI estimate log(M+1) − L went from -0.005 to -0.005 nats (mean over runs); "
            "its ceiling log(M+1) was not recorded by these runs, but it is at least log 2 nats") in text
    assert ("the representation loss's MI estimate log(M+1) − L went from 0.200 to 2.300 nats (mean over runs), "
            "8.7 % → 99.9 % of its ceiling (2.303 nats): saturated in 2/2 runs at the last evaluation; at step 100 "
            "(43.4 %) in between in 2/2 runs. These runs predate the recorded ceiling: it is log(m+1) with m = 9 "
            "negatives from their config.") in text
    assert ("`infoprompt_head`: the head loss's MI estimate log(M+1) − L went from 0.040 to 0.052 nats (mean over "
            "runs), 1.0 % → 1.3 % of its ceiling (4.000 nats): inert in 2/2 runs at the last evaluation; at step 100 "
            "(2.0 %) inert in 2/2 runs.") in text
    assert "0.05 nats" not in text and "not learning" not in text
    assert "**inert** below 5 % and **saturated** above 95 %" in text and "step 100" in text


def test_the_second_panel_draws_train_ce_and_each_terms_fraction(tmp_path, monkeypatch):
    """The right-hand panels: train CE per method, and each term's % of its ceiling per method (mean over seeds);
    a method without a term, or whose head ceiling was not recorded, draws no line for it."""
    import matplotlib.pyplot as plt

    from lit_infoprompt.analysis.plots import plot_curves

    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to look at its lines
    new = [with_fractions({"config": ARCHIVED, "curve": recorded_rows("head", f)}) for f in
           ((0.01, 0.02, 0.03), (0.03, 0.04, 0.05))]
    for run, rep in zip(new, ((0.2, 0.6, 0.96), (0.4, 0.8, 1.0))):
        for row, f in zip(run[1:], rep):
            row.update({"diag/mi_rep_nats": 3 * f, "diag/mi_rep_ceiling_nats": 3.0, fraction_column("rep"): f})
    old = [with_fractions({"config": ARCHIVED, "curve": archived_rows(head=[-0.005] * 3, rep=[0.35, 1.75, 3.4])})]
    plain = [archived_rows()]
    title = "semeval budget 256, backbone all-MiniLM-L6-v2, seeds " + str(list(range(1000, 1011))) + ", 1000 steps, " \
        "prompt lr as chosen on dev in semeval-budget256-1000steps"
    panels = plot_curves({"new": new, "old": old, "plain": plain}, "val/acc", title, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert [p["xlabel"] for p in panels] == ["optimiser step", "", "optimiser step"]
    assert "examples" not in " ".join(p["xlabel"] for p in panels)
    assert panels[0]["lines"] == ["new (n=2)", "old (n=1)", "plain (n=1)"]
    assert panels[1]["ylabel"] == "train cross-entropy (nats)"
    assert panels[1]["lines"] == ["new train CE", "old train CE", "plain train CE"]
    assert panels[2]["lines"] == ["new head % of ceiling", "new rep % of ceiling", "old rep % of ceiling"]
    shown = figures[0]._suptitle.get_text()  # a long header wraps onto lines that fit the figure, none of it lost
    assert shown.replace("\n", " ") == title and len(shown.splitlines()) == 2 \
        and all(len(line) <= 140 for line in shown.splitlines())
    dev, loss, share = figures[0].axes
    ce = {line.get_label(): line for line in loss.get_lines()}
    assert list(ce["new train CE"].get_xdata()) == [50, 100, 150]  # step 0 has no training loss
    assert list(ce["plain train CE"].get_ydata()) == pytest.approx([1.5, 1.0, 0.5])
    drawn = {line.get_label(): line for line in share.get_lines() if not line.get_label().startswith("_")}
    assert list(drawn["new head % of ceiling"].get_ydata()) == pytest.approx([2.0, 3.0, 4.0])  # mean over seeds, in %
    assert list(drawn["new rep % of ceiling"].get_ydata()) == pytest.approx([30.0, 70.0, 98.0])
    assert list(drawn["old rep % of ceiling"].get_ydata()) == pytest.approx(
        [100 * v / math.log(33) for v in (0.35, 1.75, 3.4)])
    assert drawn["new head % of ceiling"].get_linestyle() == "--" and drawn["new rep % of ceiling"].get_linestyle() == "-"
    assert share.get_title() == "no head loss line for old (ceiling not recorded)"  # new's was recorded
    assert [line.get_ydata()[0] for line in share.get_lines() if line.get_label().startswith("_")] == [5.0, 95.0]


def test_an_unrecorded_head_ceiling_still_gives_inert_when_the_estimate_is_below_any_ceilings_threshold():
    from lit_infoprompt.analysis.tables import ceiling_cell, ceiling_sentence

    flat = term_against_ceiling([{"config": ARCHIVED, "curve": archived_rows(head=[-0.005, 0.01, 0.03])}], "head")
    assert flat["last"] is None and flat["highest_nats"] == pytest.approx(0.03)
    assert ceiling_cell(flat) == f"{NOT_RECORDED}; inert 1/1 (below 5 % of any ceiling)"
    summary = {"first": -0.005, "last": 0.03, "ceiling": flat}
    assert "inert in 1/1 runs whatever the ceiling" in ceiling_sentence("infoprompt", "head loss", summary)
    # 0.04 nats > 5 % of log 2 = 0.0347: a ceiling of log 2 would make it "in between", so no verdict
    moved = term_against_ceiling([{"config": ARCHIVED, "curve": archived_rows(head=[0.0, 0.04, 0.0])}], "head")
    assert ceiling_cell(moved) == NOT_RECORDED
    assert "gets no verdict" in ceiling_sentence("infoprompt", "head loss", {"first": 0.0, "last": 0.0,
                                                                             "ceiling": moved})

"""`compare`: runs every method x seed once, reuses finished runs, refuses to mix experiments, and its
statistics match a hand computation."""

import json
import math
from pathlib import Path

import pytest
import torch

from conftest import tiny_overrides
from lit_infoprompt.sweep.comparison_runs import compare
from lit_infoprompt.analysis.aggregates import paired_test
from lit_infoprompt.sweep.args import parse_sweep
from lit_infoprompt.analysis.comparison_files import write_comparison
from lit_infoprompt.config import load_config, load_saved, to_yaml
from lit_infoprompt.errors import InputError


@pytest.mark.train
def test_compare_runs_reuses_and_writes_the_comparison(roberta_dir, tmp_path):
    args = tiny_overrides(roberta_dir, tmp_path / "runs", "trainer.max_steps=4", "trainer.val_every=2")
    out = compare([*args, "methods=[prompt_tuning,infoprompt_head]", "seeds=[13,21]"])
    assert out == tmp_path / "runs/compare/cb-4shot"
    assert {p.name for p in out.iterdir()} == {"curves.png", "summary.md", "summary.json", "runs.txt", "spec.json"}
    runs = out.joinpath("runs.txt").read_text().split()
    assert len(runs) == 4 and len(set(runs)) == 4
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == {"prompt_tuning", "infoprompt_head"}
    assert summary["methods"]["infoprompt_head"]["seeds"] == [13, 21]
    assert summary["paired_vs_prompt_tuning"]["infoprompt_head"]["seeds"] == [13, 21]
    flagged = len(summary["methods"]["prompt_tuning"]["degenerate"])  # 4 tiny steps may well answer one class
    assert ("| prompt_tuning | 0.001 | 2" + (f" ({flagged} degenerate)" if flagged else "") + " |") in \
        (out / "summary.md").read_text()
    assert out.joinpath("curves.png").read_bytes()[:4] == b"\x89PNG"
    # A second call finds every finished run and trains nothing new.
    compare([*args, "methods=[prompt_tuning,infoprompt_head]", "seeds=[13,21]"])
    assert len(list((tmp_path / "runs/cb").rglob("summary.json"))) == 4
    # Another experiment (more steps) is not mixed with these: it gets runs of its own.
    compare([*tiny_overrides(roberta_dir, tmp_path / "runs", "trainer.max_steps=6", "trainer.val_every=2"),
             "methods=[prompt_tuning]", "seeds=[13]"])
    assert len(list((tmp_path / "runs/cb").rglob("summary.json"))) == 5


def fake_run(root, method, seed, test_acc, curve, **config_changes):
    config = load_config([f"method={method}", f"seed={seed}"])
    for key, value in config_changes.items():
        section, name = key.split("__")
        setattr(getattr(config, section), name, value)
    run_dir = root / method / f"seed{seed}" / "_".join(f"{k}{v}" for k, v in config_changes.items())
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(to_yaml(config))
    (run_dir / "curve.csv").write_text("step,examples,seconds,val/acc\n"
                                       + "".join(f"{s},{8 * s},{s / 10},{a}\n" for s, a in curve))
    (run_dir / "summary.json").write_text(json.dumps({
        "task": "cb", "method": method, "seed": seed, "shots": 16, "protocol": "per_class", "split_size": 16,
        "backbone": "tiny", "dev_metric": "acc", "test_acc": test_acc, "split_checksum": f"data{seed}"}))
    return run_dir


def test_aggregate_by_hand(tmp_path):
    dirs = [fake_run(tmp_path, "prompt_tuning", 13, 0.50, [(0, 0.9), (10, 0.6), (20, 0.6)]),
            fake_run(tmp_path, "prompt_tuning", 21, 0.60, [(0, 0.2), (10, 0.4), (20, 0.8)]),
            fake_run(tmp_path, "infoprompt", 13, 0.55, [(0, 0.2), (10, 0.7), (20, 0.7)]),
            fake_run(tmp_path, "infoprompt", 21, 0.70, [(0, 0.2), (10, 0.5), (20, 0.8)])]
    result = write_comparison(dirs, ["prompt_tuning", "infoprompt"], tmp_path / "out", 0.7)
    base, info = result["methods"]["prompt_tuning"], result["methods"]["infoprompt"]
    assert base["test_acc"]["mean"] == pytest.approx(0.55) and base["test_acc"]["std"] == pytest.approx(0.0707107, 1e-5)
    assert info["steps_to_target"] == {"mean": 15.0, "std": pytest.approx(7.0710678), "n": 2, "reached": 2, "of": 2,
                                       "median_all": 15.0}
    # seed 13's baseline never reaches 0.7 after training (its step-0 score 0.9 does not count)
    assert base["steps_to_target"]["reached"] == 1 and base["steps_to_target"]["median_all"] is None
    assert base["best_dev"]["mean"] == pytest.approx(0.7)  # 0.6 and 0.8: step 0 is not selectable
    # AUC from the first trained evaluation: seed 13 0.6; seed 21 (0.4 + 0.8) / 2 = 0.6
    assert base["dev_auc"]["mean"] == pytest.approx(0.6)
    paired = result["paired_vs_prompt_tuning"]["infoprompt"]
    assert paired["differences"] == pytest.approx([0.05, 0.10])


@pytest.mark.train
def test_the_default_target_is_pooled_over_the_methods(tmp_path):
    # best dev after training: baseline 0.6 and 0.8, infoprompt 0.7 and 0.8 -> pooled quartiles 0.675, 0.75, 0.8
    dirs = [fake_run(tmp_path, "prompt_tuning", 13, 0.50, [(0, 0.2), (10, 0.6), (20, 0.6)]),
            fake_run(tmp_path, "prompt_tuning", 21, 0.60, [(0, 0.2), (10, 0.4), (20, 0.8)]),
            fake_run(tmp_path, "infoprompt", 13, 0.55, [(0, 0.2), (10, 0.7), (20, 0.7)]),
            fake_run(tmp_path, "infoprompt", 21, 0.70, [(0, 0.2), (10, 0.5), (20, 0.8)])]
    result = write_comparison(dirs, ["prompt_tuning", "infoprompt"], tmp_path / "out", None)
    assert result["target_dev"] == pytest.approx(0.75)  # not the baseline's own mean best dev (0.7)
    assert list(result["thresholds"].values()) == pytest.approx([0.675, 0.75, 0.8])
    info = result["methods"]["infoprompt"]["steps_to_thresholds"]
    assert [(t["reached"], t["median_all"]) for t in info] == [(2, 15.0), (1, None), (1, None)]
    # swapping the methods' roles leaves the target where it is: it favours neither
    swapped = write_comparison(dirs, ["infoprompt", "prompt_tuning"], tmp_path / "out2", None)
    assert swapped["target_dev"] == pytest.approx(result["target_dev"])
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "median of the best dev scores of all runs of all methods" in text


def test_paired_t_test_matches_scipy_and_handles_ties():
    from scipy import stats
    base, other = {1: 0.5, 2: 0.6, 3: 0.55}, {1: 0.6, 2: 0.62, 3: 0.65}
    result = paired_test(base, other)
    assert result["t_test_p"] == pytest.approx(stats.ttest_rel([0.6, 0.62, 0.65], [0.5, 0.6, 0.55]).pvalue)
    assert paired_test(base, dict(base))["t_test_p"] is None  # no differences: no test


def test_runs_that_differ_in_more_than_method_and_seed_are_refused(tmp_path):
    dirs = [fake_run(tmp_path, "prompt_tuning", 13, 0.5, [(0, 0.2), (10, 0.6)]),
            fake_run(tmp_path, "infoprompt", 13, 0.5, [(0, 0.2), (10, 0.6)], optim__prompt_lr=0.3)]
    with pytest.raises(InputError, match="they differ in optim.prompt_lr"):
        write_comparison(dirs, ["prompt_tuning", "infoprompt"], tmp_path / "out", None)
    other_data = fake_run(tmp_path / "b", "infoprompt", 13, 0.5, [(0, 0.2), (10, 0.6)])
    summary = json.loads((other_data / "summary.json").read_text())
    (other_data / "summary.json").write_text(json.dumps({**summary, "split_checksum": "other"}))
    with pytest.raises(InputError, match="used different data"):
        write_comparison([dirs[0], other_data], ["prompt_tuning", "infoprompt"], tmp_path / "out", None)


@pytest.mark.train
def test_robustness_and_report_from_runs_on_disk(roberta_dir, tmp_path, monkeypatch):
    import lit_infoprompt.model.backbone
    from lit_infoprompt.sweep.reporting import report
    from lit_infoprompt.sweep.robustness_runs import robustness

    import lit_infoprompt.sweep.grid
    loads = []
    real_load = lit_infoprompt.model.backbone.load_backbone
    monkeypatch.setattr(lit_infoprompt.model.backbone, "load_backbone", lambda model: loads.append(1) or real_load(model))
    monkeypatch.setattr(lit_infoprompt.sweep.grid, "_BACKBONES", {})  # this process's backbones: none loaded yet

    args = tiny_overrides(roberta_dir, tmp_path / "runs", "trainer.max_steps=2", "trainer.val_every=2")
    grid = compare([*args, "methods=[prompt_tuning,infoprompt_head]", "seeds=[13,21]", "prompt_lrs=[1e-3,1e-2]"])
    chosen = {m: c["chosen"] for m, c in json.loads((grid / "summary.json").read_text())["prompt_lr_choice"].items()}
    loads.clear()
    lit_infoprompt.sweep.grid._BACKBONES.clear()
    out = robustness([*args, "methods=[prompt_tuning,infoprompt_head]", "seeds=[13]", f"prompt_lr_from={grid}"])
    assert len(loads) == 1  # six new runs over four inits and two methods share one backbone
    summary = json.loads((out / "summary.json").read_text())
    table = summary["methods"]
    assert set(table["prompt_tuning"]["per_init"]) == {"random", "vocab", "text", "label_words"}
    assert table["prompt_tuning"]["all"]["n"] == 4 and len((out / "runs.txt").read_text().split()) == 8
    assert f"prompt lr prompt_tuning {chosen['prompt_tuning']:g}, infoprompt_head {chosen['infoprompt_head']:g}" \
        in summary["header"]
    # the split in the words of the comparison's header (it said the folder's "4shot")
    assert summary["header"].startswith("cb 4-shot, ") and (out.name, out.parent.name) == ("cb-4shot", "robustness")
    assert json.loads((grid / "summary.json").read_text())["header"].startswith("cb 4-shot, ")
    for run_dir in (out / "runs.txt").read_text().split():  # each method ran at the rate its grid chose
        saved = load_saved(Path(run_dir) / "config.yaml")
        assert saved.optim.prompt_lr == chosen[saved.method.name]
    (tmp_path / "docs").mkdir()
    declared = tmp_path / "experiments"  # only declared experiments are archived; the report reads their files
    (declared / "robustness").mkdir(parents=True)
    common = f"task: {{}}\nshots: {{}}\nsteps: {{}}\nmodel: {roberta_dir}\nseeds: [{{}}]\narms:\n"
    (declared / "cb-4shot.yaml").write_text(common.format("cb", 4, 2, "13, 21") + "  prompt_tuning: prompt_tuning\n"
                                            "  infoprompt_head: infoprompt_head\nprompt_lrs: [0.001, 0.01]\n")
    (declared / "robustness/cb-4shot.yaml").write_text(common.format("cb", 4, 2, "13") + "  prompt_tuning: prompt_tuning\n"
                                                       "  infoprompt_head: infoprompt_head\nkind: robustness\n"
                                                       "rates_from: cb-4shot\n")
    (declared / "wic-16shot.yaml").write_text(common.format("wic", 16, 300, "13, 21") + "  prompt_tuning: prompt_tuning\n"
                                              "  infoprompt: infoprompt\n")  # declared, not run
    path = report(str(tmp_path / "runs"), str(tmp_path / "docs/RESULTS.md"), experiments=str(declared))
    text = path.read_text()
    assert "## cb 4-shot" in text and "`infoprompt_head` vs `prompt_tuning`" in text
    assert "## Robustness to prompt initialisation" in text and "## Runs in this report" in text
    archive = tmp_path / "docs/results"
    assert (archive / "compare/cb-4shot/curves.png").is_file() and "(results/compare/cb-4shot/curves.png)" in text
    for line in (out / "runs.txt").read_text().split():  # every run's small files are archived, none of its checkpoints
        archived = archive / "runs" / Path(line).relative_to(tmp_path / "runs")
        assert {p.name for p in archived.iterdir()} == {"config.yaml", "split.json", "curve.csv", "summary.json"}
        assert str(archived.relative_to(archive)) in (archive / "compare/cb-4shot/runs.txt").read_text() + \
            (archive / "robustness/cb-4shot/runs.txt").read_text()
    assert "(results/compare/cb-4shot/runs.txt)" in text  # the report lists the runs through each runs.txt
    lack = text.split("## What the declared experiments still lack")[1].split("\n## ")[0]
    assert "- `wic-16shot` (compare: wic 16-shot, 300 steps, arms prompt_tuning, infoprompt, 2 seeds): not run yet; " \
           "4 of 4 runs to train" in lack
    assert "`cb-4shot`" not in lack  # the comparison and the sweep hold every run their files ask for
    # a fresh clone has the archive but no runs/: the report comes out the same, and compare reuses archived runs
    import shutil
    shutil.rmtree(tmp_path / "runs")
    assert report(str(tmp_path / "runs"), str(tmp_path / "docs/RESULTS.md"), experiments=str(declared)).read_text() == text
    loads.clear()
    again = compare([*args, f"archive={archive}", "methods=[prompt_tuning,infoprompt_head]", "seeds=[13,21]",
                     "prompt_lrs=[1e-3,1e-2]"])
    assert not loads and not (tmp_path / "runs/cb").exists()  # nothing trained
    assert json.loads((again / "summary.json").read_text())["prompt_lr_choice"] == \
        json.loads((archive / "compare/cb-4shot/summary.json").read_text())["prompt_lr_choice"]


def test_robustness_refuses_a_comparison_without_a_grid(roberta_dir, tmp_path):
    from lit_infoprompt.sweep.robustness_runs import robustness

    args = tiny_overrides(roberta_dir, tmp_path / "runs", "trainer.max_steps=2", "trainer.val_every=2")
    with pytest.raises(InputError, match="no comparison at"):
        robustness([*args, "seeds=[13]", f"prompt_lr_from={tmp_path}/nothing"])
    folder = fake_run(tmp_path, "prompt_tuning", 13, 0.5, [(0, 0.2), (10, 0.6)]).parent
    write_comparison([folder / "seed13"], ["prompt_tuning"], tmp_path / "plain", None)
    with pytest.raises(InputError, match="chose no prompt lr for prompt_tuning"):
        robustness([*args, "methods=[prompt_tuning]", "seeds=[13]", f"prompt_lr_from={tmp_path}/plain"])


@pytest.mark.train
def test_a_run_saved_before_a_new_config_field_is_still_reused(roberta_dir, tmp_path):
    from lit_infoprompt.analysis.runs import find_run
    args = tiny_overrides(roberta_dir, tmp_path / "runs", "trainer.max_steps=2", "trainer.val_every=2")
    compare([*args, "methods=[prompt_tuning]", "seeds=[13]"])
    saved = next((tmp_path / "runs/cb").rglob("config.yaml"))
    saved.write_text("\n".join(line for line in saved.read_text().splitlines() if "dtype:" not in line) + "\n")
    def requested(*extra):  # as the grid asks: the config as the run would save it
        from lit_infoprompt.sweep.grid import grid_jobs, job_config

        return job_config(grid_jobs([*args, *extra], ["prompt_tuning"], [13])[0])

    run_dir, finished = find_run(requested())
    assert finished and run_dir == saved.parent
    assert find_run(requested("model.dtype=bfloat16"))[0] is None


@pytest.mark.train
def test_prompt_lr_is_chosen_on_dev_scores_only(tmp_path):
    def runs(method, lr, tests, curves):
        return [fake_run(tmp_path, method, seed, test, curve, optim__prompt_lr=lr)
                for seed, test, curve in zip((13, 21), tests, curves)]
    # prompt_tuning: 1e-3 has the better dev (mean best 0.7 vs 0.6) but the worse test: 1e-3 must win.
    # infoprompt: equal mean best dev (0.8); 1e-2 has the higher dev AUC (0.8 vs 0.7), so it wins the tie;
    # 1e-3's step-0 score 0.9 counts in neither the best dev nor the AUC.
    dirs = (runs("prompt_tuning", 1e-3, (0.40, 0.50), ([(0, 0.2), (10, 0.7)], [(0, 0.2), (10, 0.7)]))
            + runs("prompt_tuning", 1e-2, (0.90, 0.90), ([(0, 0.2), (10, 0.6)], [(0, 0.2), (10, 0.6)]))
            + runs("infoprompt", 1e-3, (0.60, 0.60), ([(0, 0.9), (10, 0.6), (20, 0.8)], [(0, 0.9), (10, 0.6), (20, 0.8)]))
            + runs("infoprompt", 1e-2, (0.70, 0.80), ([(0, 0.2), (10, 0.8), (20, 0.8)], [(0, 0.2), (10, 0.8), (20, 0.8)])))
    result = write_comparison(dirs, ["prompt_tuning", "infoprompt"], tmp_path / "out", None, lr_grid=True)
    choice = result["prompt_lr_choice"]
    assert choice["prompt_tuning"]["chosen"] == 1e-3 and choice["infoprompt"]["chosen"] == 1e-2
    assert [g["best_dev"]["mean"] for g in choice["prompt_tuning"]["grid"]] == pytest.approx([0.7, 0.6])
    assert result["methods"]["prompt_tuning"]["test_acc"]["mean"] == pytest.approx(0.45)
    assert result["methods"]["prompt_tuning"]["prompt_lr"] == [1e-3]
    assert result["methods"]["infoprompt"]["test_acc"]["mean"] == pytest.approx(0.75)
    assert result["paired_vs_prompt_tuning"]["infoprompt"]["differences"] == pytest.approx([0.30, 0.30])
    text = (tmp_path / "out/summary.md").read_text()
    assert "| prompt_tuning | **0.7000 ± 0.0000** | 0.6000 ± 0.0000 |" in text
    assert "| infoprompt | 0.01 | 2 |" in text and "prompt lr chosen on dev from [0.001, 0.01]" in \
        json.loads((tmp_path / "out/summary.json").read_text())["header"]
    # Without the grid flag, runs at different rates are still refused.
    with pytest.raises(InputError, match="optim.prompt_lr"):
        write_comparison(dirs, ["prompt_tuning", "infoprompt"], tmp_path / "out2", None)


def test_a_grid_run_on_other_seeds_is_refused(tmp_path):
    dirs = [fake_run(tmp_path, "prompt_tuning", 13, 0.5, [(0, 0.2), (10, 0.6)], optim__prompt_lr=1e-3),
            fake_run(tmp_path, "prompt_tuning", 21, 0.5, [(0, 0.2), (10, 0.6)], optim__prompt_lr=1e-2)]
    with pytest.raises(InputError, match="different seeds"):
        write_comparison(dirs, ["prompt_tuning"], tmp_path / "out", None, lr_grid=True)


@pytest.mark.parametrize("args, message", [
    (["prompt_lrs=[1e-3,x]"], "expected a list of numbers"),
    (["prompt_lrs=[0,1e-3]"], "must be positive"),
    (["prompt_lrs=[1e-3,1e-2]", "optim.prompt_lr=0.1"], "one way"),
    (["prompt_lr_from=runs/compare/x", "optim.prompt_lr=0.1"], "one way"),
    (["allow_mixed_versions=maybe"], "expected true or false"),
])
def test_bad_prompt_lr_grids_are_refused(args, message):
    with pytest.raises(InputError, match=message):
        parse_sweep(args)


@pytest.mark.parametrize("name", ["name=", "name=../x", "name=a/b"])
def test_a_bad_output_name_is_refused(name):
    with pytest.raises(InputError, match="name: expected one folder name"):
        compare([name])


@pytest.mark.train
def test_compare_with_a_prompt_lr_grid_trains_each_rate(roberta_dir, tmp_path):
    args = tiny_overrides(roberta_dir, tmp_path / "runs", "trainer.max_steps=2", "trainer.val_every=2")
    out = compare([*args, "methods=[prompt_tuning]", "seeds=[13]", "prompt_lrs=[1e-2,1e-3]", "name=cb-grid"])
    assert out == tmp_path / "runs/compare/cb-grid"
    summary = json.loads((out / "summary.json").read_text())
    assert [g["prompt_lr"] for g in summary["prompt_lr_choice"]["prompt_tuning"]["grid"]] == [1e-3, 1e-2]
    assert len((out / "runs.txt").read_text().split()) == 2
    saved = sorted(load_saved(p).optim.prompt_lr for p in (tmp_path / "runs/cb").rglob("config.yaml"))
    assert saved == [1e-3, 1e-2]


def test_robustness_spread_and_verdict_by_hand():
    from lit_infoprompt.analysis.robustness_files import robustness_markdown, robustness_spread

    def run(method, init, score):
        return {"summary": {"method": method, "test_acc": score}, "config": {"prompt": {"init": init}}}
    runs = [run("prompt_tuning", "random", 0.5), run("prompt_tuning", "random", 0.7),
            run("prompt_tuning", "vocab", 0.6), run("prompt_tuning", "vocab", 0.8),
            run("infoprompt", "random", 0.6), run("infoprompt", "random", 0.62),
            run("infoprompt", "vocab", 0.61), run("infoprompt", "vocab", 0.61)]
    table = robustness_spread(runs, ["prompt_tuning", "infoprompt"], "test_acc")
    base = table["prompt_tuning"]
    assert base["per_init"]["random"]["mean"] == pytest.approx(0.6) and base["per_init"]["vocab"]["mean"] == pytest.approx(0.7)
    assert base["std_of_init_means"] == pytest.approx(0.0707107, 1e-5)  # stdev(0.6, 0.7)
    assert base["all"]["std"] == pytest.approx(0.1290994, 1e-5)  # stdev(0.5, 0.7, 0.6, 0.8)
    assert table["infoprompt"]["std_of_init_means"] == pytest.approx(0.0)
    text = robustness_markdown(table, "cb", "test_acc")
    assert "| prompt_tuning | 0.6000 ± 0.1414 | 0.7000 ± 0.1414 | 0.0707 | 0.6500 ± 0.1291 |" in text
    assert "`infoprompt` vs `prompt_tuning`: std of the per-initialisation means 0.0000 vs 0.0707" in text
    assert ": less spread over initialisations" in text and "lowest initialisation mean 0.6100 vs 0.6000" in text


def test_runs_of_different_code_versions_are_refused_unless_allowed(tmp_path):
    dirs = [fake_run(tmp_path, "prompt_tuning", 13, 0.5, [(0, 0.2), (10, 0.6)], code__code_hash="aaaa"),
            fake_run(tmp_path, "infoprompt", 13, 0.6, [(0, 0.2), (10, 0.7)], code__code_hash="bbbb")]
    with pytest.raises(InputError, match="made by 2 code versions .*allow_mixed_versions=true"):
        write_comparison(dirs, ["prompt_tuning", "infoprompt"], tmp_path / "out", None)
    result = write_comparison(dirs, ["prompt_tuning", "infoprompt"], tmp_path / "out", None, allow_mixed_versions=True)
    assert set(result["code_versions"]) == {"aaaa", "bbbb"}
    assert "mixed code versions, aggregated with allow_mixed_versions=true" in (tmp_path / "out/summary.md").read_text()
    same = [fake_run(tmp_path / "same", m, 13, 0.5, [(0, 0.2), (10, 0.6)], code__code_hash="aaaa")
            for m in ("prompt_tuning", "infoprompt")]
    text = (write_comparison(same, ["prompt_tuning", "infoprompt"], tmp_path / "same_out", None) and
            (tmp_path / "same_out/summary.md").read_text())
    assert "code aaaa (2 runs)" in text and "mixed" not in text


@pytest.mark.train
def test_a_compare_run_records_its_code_version(roberta_dir, tmp_path):
    from lit_infoprompt.provenance import current_identity

    args = tiny_overrides(roberta_dir, tmp_path / "runs", "trainer.max_steps=2", "trainer.val_every=2")
    out = compare([*args, "methods=[prompt_tuning]", "seeds=[13]"])
    run_dir = Path(out.joinpath("runs.txt").read_text().split()[0])
    saved = load_saved(run_dir / "config.yaml")
    assert saved.code.identity == current_identity() and saved.code.commit and saved.code.code_hash is None
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["code"]["identity"] == current_identity()
    assert list(json.loads((out / "summary.json").read_text())["code_versions"]) == [current_identity()]
    env = summary["environment"]
    assert env["torch"] == torch.__version__.split("+")[0] or env["torch"].startswith(torch.__version__[:4])
    assert env["precision"] == "32-true" and env["threads"] >= 1 and env["device"] and env["python"].count(".") == 2


def test_a_legacy_hash_and_the_identity_it_maps_to_are_one_version(tmp_path):
    from lit_infoprompt.provenance import table

    legacy, row = next(iter(table()["legacy"].items()))
    dirs = [fake_run(tmp_path, "prompt_tuning", 13, 0.5, [(0, 0.2), (10, 0.6)], code__code_hash=legacy),
            fake_run(tmp_path, "infoprompt", 13, 0.6, [(0, 0.2), (10, 0.7)], code__identity=row["identity"])]
    result = write_comparison(dirs, ["prompt_tuning", "infoprompt"], tmp_path / "out", None)
    assert list(result["code_versions"]) == [legacy, row["identity"]]  # listed as recorded, not refused
    assert "mixed" not in (tmp_path / "out/summary.md").read_text()
    other = fake_run(tmp_path / "x", "infoprompt", 13, 0.6, [(0, 0.2), (10, 0.7)], code__identity="0" * 16)
    with pytest.raises(InputError, match="made by 2 code versions"):
        write_comparison([dirs[0], other], ["prompt_tuning", "infoprompt"], tmp_path / "out2", None)


def test_different_environments_are_one_line_of_the_summary(tmp_path):
    dirs = [fake_run(tmp_path, m, 13, 0.5, [(0, 0.2), (10, 0.6)]) for m in ("prompt_tuning", "infoprompt")]
    write_comparison(dirs, ["prompt_tuning", "infoprompt"], tmp_path / "same", None)
    assert "Environments" not in (tmp_path / "same/summary.md").read_text()  # none recorded: nothing said
    for d, torch_version in zip(dirs, ("2.13.0", "2.14.1")):
        summary = json.loads((d / "summary.json").read_text())
        summary["environment"] = {"torch": torch_version, "device": "cpu", "threads": 2}
        (d / "summary.json").write_text(json.dumps(summary))
    result = write_comparison(dirs, ["prompt_tuning", "infoprompt"], tmp_path / "out", None)
    lines = [l for l in (tmp_path / "out/summary.md").read_text().splitlines() if "Environments" in l]
    assert lines == ["Environments differ between the runs: torch 2.13.0 (1 runs), 2.14.1 (1 runs)."]
    assert result["environments"] == "torch 2.13.0 (1 runs), 2.14.1 (1 runs)"


def test_the_comparison_gives_intervals_mde_and_a_verdict_for_each_difference(tmp_path):
    curve = [(0, 0.2), (10, 0.5), (20, 0.7)]
    dirs = [fake_run(tmp_path, "prompt_tuning", 13, 0.50, curve), fake_run(tmp_path, "prompt_tuning", 21, 0.60, curve),
            fake_run(tmp_path, "infoprompt", 13, 0.55, curve), fake_run(tmp_path, "infoprompt", 21, 0.70, curve)]
    for d, n in zip(dirs, (20, 20, 20, 20)):  # runs that recorded their test size
        summary = json.loads((d / "summary.json").read_text())
        (d / "summary.json").write_text(json.dumps({**summary, "sizes": {"test": n}}))
    result = write_comparison(dirs, ["prompt_tuning", "infoprompt"], tmp_path / "out", 0.7)
    test = result["power_vs_prompt_tuning"]["infoprompt"]["test"]
    # differences 0.05 and 0.10: mean 0.075, sd 0.0353553, t(0.975, 1) = 12.7062 -> half-width 0.317655
    assert test["mean"] == pytest.approx(0.075) and test["n"] == 2
    assert test["t_interval"] == pytest.approx((0.075 - 0.317655, 0.075 + 0.317655), abs=1e-5)
    assert test["verdict"] == "too few seeds" and test["mde"] > 0.3
    steps = result["power_vs_prompt_tuning"]["infoprompt"]["steps_to_target"]
    assert steps["n"] == 2 and steps["of"] == 2 and steps["mean"] == 0 and steps["mde"] is None
    assert steps["verdict"] == "too few seeds"  # same curves in 2 seeds: a zero-width interval, no evidence either way
    assert result["margins"] == {"score": 0.05, "steps": pytest.approx(0.1 * load_saved(dirs[0] / "config.yaml").trainer.max_steps)}
    noise = result["methods"]["prompt_tuning"]["within_run_noise"]
    assert noise["n"] == 20 and noise["method"] == "binomial"
    assert noise["sd_within"] == pytest.approx(math.sqrt(0.25 / 20) / 2 + math.sqrt(0.24 / 20) / 2)  # median of two
    text = (tmp_path / "out/summary.md").read_text()
    assert "`infoprompt` vs `prompt_tuning`, test acc: **too few seeds to tell**" in text
    assert "| infoprompt | test acc | 2 | +0.0750 | [-0.2427, +0.3927] |" in text
    assert "| prompt_tuning | 0.5500 ± 0.0707 |" in text  # the across-seed spread beside the within-run noise
    # the margin is a sweep setting and reaches the verdict
    wide = write_comparison(dirs, ["prompt_tuning", "infoprompt"], tmp_path / "wide", 0.7, margin=0.5)
    assert wide["power_vs_prompt_tuning"]["infoprompt"]["test"]["verdict"] == "equal"
    assert json.loads((tmp_path / "wide/spec.json").read_text())["margin"] == 0.5
    with pytest.raises(InputError, match="margin"):
        parse_sweep(["margin=2"])


def test_the_plot_is_against_steps_with_no_wall_clock(tmp_path):
    """Runs of a comparison are timed under different machine load: their seconds are no speed comparison, so the
    plot must not draw them (make bench gives the cost per step); curves without a seconds column plot too. Examples
    seen are the steps times a fixed batch: no panel of their own (the second panel: tests/test_ceiling.py)."""
    from lit_infoprompt.analysis.plots import mean_curve, plot_curves

    slow = [{"step": s, "examples": 8 * s, "seconds": 100.0 * s, "val/acc": 0.5 + s / 100} for s in (0, 10, 20)]
    fast = [{"step": s, "examples": 8 * s, "val/acc": 0.4 + s / 100} for s in (0, 10, 20)]
    panels = plot_curves({"a": [slow], "b": [fast]}, "val/acc", "title", tmp_path / "curves.png")
    assert [p["xlabel"] for p in panels] == ["optimiser step", "", "optimiser step"]
    assert not any("second" in p["xlabel"] or "examples" in p["xlabel"] for p in panels)
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    xs, mean, std = mean_curve([slow, [dict(r, **{"val/acc": r["val/acc"] + 0.2}) for r in slow]], "examples", "val/acc")
    assert list(xs) == [0, 80, 160] and list(mean.round(6)) == [0.6, 0.7, 0.8] and list(std.round(6)) == [0.1] * 3
    assert mean_curve([slow], "step", "train/loss/ce") is None  # a column no row has: nothing to draw


def test_each_method_is_read_against_the_constant_predictor(tmp_path):
    """Test set of 100: gold 60 / 30 / 10, so always answering class 0 scores 0.60 accuracy. The baseline's runs sit
    at 0.61 (within one run's 95 % binomial interval, about ±0.095, of the floor): not above it; InfoPrompt's at
    0.80: above it. The summary says so per method, and the at-a-glance row flags the baseline."""
    def confusion(correct):  # gold rows 60, 30, 10; `correct` of them on the diagonal, the rest predicted as 0
        wrong = 100 - correct
        row1, row2 = min(30, wrong), max(0, wrong - 30)
        return [[60, 0, 0], [row1, 30 - row1, 0], [row2, 0, 10 - row2]]

    dirs = []
    for method, scores in (("prompt_tuning", (61, 61)), ("infoprompt", (80, 80))):
        for seed, correct in zip((13, 21), scores):
            run_dir = fake_run(tmp_path, method, seed, correct / 100, [(0, 0.2), (10, 0.6)])
            summary = json.loads((run_dir / "summary.json").read_text())
            summary.update(confusion_matrix_test=confusion(correct), sizes={"test": 100})
            (run_dir / "summary.json").write_text(json.dumps(summary))
            dirs.append(run_dir)
    result = write_comparison(dirs, ["prompt_tuning", "infoprompt"], tmp_path / "out", 0.5)
    assert result["constant_predictor"]["acc"] == {"score": 0.6, "class": "entailment"}
    base, info = result["methods"]["prompt_tuning"]["vs_constant"], result["methods"]["infoprompt"]["vs_constant"]
    assert base["difference"] == pytest.approx(0.01) and not base["above"] and 0.08 < base["clear_by"] < 0.11
    assert info["difference"] == pytest.approx(0.20) and info["above"]
    text = (tmp_path / "out/summary.md").read_text()
    assert "acc 0.6000 (always entailment)" in text and text.count("**not clearly above the constant predictor**") == 1
    from lit_infoprompt.analysis.report import glance
    row = glance([json.loads((tmp_path / "out/summary.json").read_text())])[-2]
    assert "| 0.6000 | 0.6100 | 0.8000 |" in row and "prompt_tuning not clearly above the constant predictor" in row

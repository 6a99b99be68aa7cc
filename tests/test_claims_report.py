"""docs/RESULTS.md's section "The paper's claims on this backbone": built from stand-in archived comparisons (run
files written by hand, no training) and the experiments declared for them, it says holds / does not hold / equal /
cannot say per claim and method from each comparison's own numbers, reads only the experiments whose files name a
claim, reads the label-words control and the γ dose-response, says honestly when there is no evidence yet, and says
what each declared experiment still lacks (a new file shows up as not run, with its plan)."""

import json
import statistics
from pathlib import Path

import pytest

from lit_infoprompt.analysis.claims_report import claims
from lit_infoprompt.analysis.claims_words import seeds_needed
from lit_infoprompt.analysis.comparison_files import write_comparison
from lit_infoprompt.analysis.power import minimum_detectable
from lit_infoprompt.experiment import Experiment
from lit_infoprompt.analysis.declarations import Declared, lacking_lines
from lit_infoprompt.analysis.robustness_files import write_robustness
from lit_infoprompt.config import load_config, to_yaml

SEEDS = [13, 21, 42, 87, 100]
BASE_TEST = dict(zip(SEEDS, [0.50, 0.55, 0.60, 0.52, 0.58]))
NOISE = dict(zip(SEEDS, [0.010, -0.010, 0.020, 0.000, -0.020]))
PT = {"method": "prompt_tuning", "overrides": [], "match": {"prompt.init": "vocab"}}
LW = {"method": "prompt_tuning", "overrides": ["prompt.init=label_words"], "match": {"prompt.init": "label_words"}}
GAMMA = {"infoprompt_plus": {"method": "infoprompt_plus", "overrides": [], "match": {"method.head_weight": 0.1}},
         "gamma1": {"method": "infoprompt_plus", "overrides": ["method.head_weight=1"],
                    "match": {"method.head_weight": 1.0}},
         "gamma10": {"method": "infoprompt_plus", "overrides": ["method.head_weight=10"],
                     "match": {"method.head_weight": 10.0}}}


def stand_in(root: Path, method: str, seed: int, test: float, dev: float, steps: int = 1000, *overrides: str) -> Path:
    """A finished run's files as the runner writes them: runs/cb/16shot/<method>/seed<s>/version_<n>."""
    config = load_config([f"method={method}", f"seed={seed}", f"trainer.max_steps={steps}", *overrides])
    parent = root / "runs/cb/16shot" / method / f"seed{seed}"
    run_dir = parent / f"version_{len(list(parent.glob('version_*'))) if parent.is_dir() else 0}"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(to_yaml(config))
    (run_dir / "curve.csv").write_text(f"step,examples,val/acc\n0,0,0.3\n{steps // 5},{steps // 3},{dev - 0.15}\n"
                                       f"{steps // 2},{steps},{dev - 0.1}\n{steps},{2 * steps},{dev}\n")
    (run_dir / "summary.json").write_text(json.dumps({
        "task": "cb", "method": method, "seed": seed, "shots": 16, "protocol": "per_class", "split_size": 16,
        "backbone": "tiny", "dev_metric": "acc", "test_acc": test, "split_checksum": f"data{seed}"}))
    return run_dir


def comparison(root: Path, name: str, arms: dict, seeds=SEEDS, steps: int = 1000, described=None) -> Path:
    """``arms``: {arm: (preset, overrides, {seed: test}, {seed: dev})}; the comparison under root/compare/<name>."""
    dirs = [stand_in(root, preset, seed, test[seed], dev[seed], steps, *overrides)
            for preset, overrides, test, dev in arms.values() for seed in seeds]
    out = root / "compare" / name
    write_comparison(dirs, list(arms), out, None, arms=described)
    return out


def shifted(by: float, noise=None, seeds=SEEDS) -> dict:
    return {s: BASE_TEST.get(s, 0.5) + by + (noise or {}).get(s, 0.0) for s in seeds}


INITS = ["random", "vocab", "text", "label_words"]
MAIN = ["convergence", "accuracy"]


def declared(name: str, claims_: list, kind: str = "compare", steps: int = 1000, seeds=SEEDS,
             arms=("prompt_tuning", "infoprompt", "infoprompt_plus")) -> Declared:
    return Declared(Experiment(task="cb", kind=kind, shots=16, steps=steps, arms={a: a for a in arms},
                               seeds=list(seeds), claims=list(claims_), name=name))


# What the stand-in archive's experiment files would declare: the 300-step ones name no claim.
DECLARED = [declared("cb-16shot-1000steps", [*MAIN, "control:label_words", "control:bottleneck"]),
            declared("cb-16shot-1000steps-8seeds", [*MAIN, "control:label_words"]),
            declared("cb-16shot-1000steps-lr", MAIN),
            declared("sst2-budget64-1000steps-bottleneck", ["control:bottleneck"]),
            declared("sst2-budget64-1000steps", MAIN, seeds=SEEDS[:3]),
            declared("lw-only-1000steps", [*MAIN, "control:label_words"]),
            declared("cb-16shot-300steps", [], steps=300),
            declared("cb-16shot-gamma", ["control:gamma"], seeds=SEEDS[:3], arms=("infoprompt_plus", "gamma1", "gamma10")),
            declared("cb-16shot-1000", ["robustness"], "robustness", seeds=SEEDS[:3],
                     arms=("prompt_tuning", "infoprompt_plus")),
            declared("cb-16shot-300", [], "robustness", 300, SEEDS[:3], ("prompt_tuning", "infoprompt_plus")),
            declared("cb-16shot-1000steps-10seeds", MAIN, seeds=range(10))]


def section(done) -> str:
    return "\n".join(claims(done, DECLARED))


def closing(text: str, question: str, method: str) -> str:
    """The closing sentence of ``method`` under a claim's question, without the Holm notes (tested on their own)."""
    import re

    after = text.split(question)[1]
    line = next(line for line in after.splitlines() if line.startswith(f"- `{method}`: "))
    return re.sub(r" \(Holm p [^)]*\)", "", line)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("claims")
    dev = {s: 0.6 for s in SEEDS}
    plus_dev = {s: 0.7 + NOISE[s] for s in SEEDS}
    info_dev = {s: 0.5 + NOISE[s] for s in SEEDS}
    folders = {
        # 5 seeds: infoprompt_plus +0.10 (holds), infoprompt -0.10 (worse), label words as good as infoprompt_plus
        "cb": comparison(root, "cb-16shot-1000steps", {
            "prompt_tuning": ("prompt_tuning", (), shifted(0), dev),
            "infoprompt": ("infoprompt", (), shifted(-0.10, NOISE), info_dev),
            "infoprompt_plus": ("infoprompt_plus", (), shifted(0.10, NOISE), plus_dev),
            "pt_label_words": ("prompt_tuning", ("prompt.init=label_words",),
                               shifted(0.10, {s: 0.8 * n for s, n in NOISE.items()}), plus_dev)},
            described={"prompt_tuning": PT, "pt_label_words": LW}),
        # 3 seeds: infoprompt_plus scattered (too few seeds), infoprompt within a hair (equal)
        "few": comparison(root, "sst2-budget64-1000steps", {
            "prompt_tuning": ("prompt_tuning", (), shifted(0, seeds=SEEDS[:3]), dev),
            "infoprompt": ("infoprompt", (), shifted(0, dict(zip(SEEDS, [0.001, -0.002, 0.0015])), SEEDS[:3]), dev),
            "infoprompt_plus": ("infoprompt_plus", (), shifted(0, dict(zip(SEEDS, [0.2, -0.15, 0.05])), SEEDS[:3]),
                                dev)}, seeds=SEEDS[:3]),
        # no infoprompt: infoprompt_plus well above prompt tuning started at the label words
        "lw": comparison(root, "lw-only-1000steps", {
            "prompt_tuning": ("prompt_tuning", (), shifted(0), dev),
            "pt_label_words": ("prompt_tuning", ("prompt.init=label_words",), shifted(0.01), dev),
            "infoprompt_plus": ("infoprompt_plus", (), shifted(0.20, NOISE), plus_dev)},
            described={"prompt_tuning": PT, "pt_label_words": LW}),
        # 300 steps: infoprompt_plus far ahead, which the section must not read
        "short": comparison(root, "cb-16shot-300steps", {
            "prompt_tuning": ("prompt_tuning", (), shifted(0), dev),
            "infoprompt_plus": ("infoprompt_plus", (), shifted(0.30, NOISE), plus_dev)}, steps=300),
        # γ: head_weight 0.1 / 1 / 10, the highest clearly lower
        "gamma": comparison(root, "cb-16shot-gamma", {
            "infoprompt_plus": ("infoprompt_plus", (), shifted(0.1, seeds=SEEDS[:3]), dev),
            "gamma1": ("infoprompt_plus", ("method.head_weight=1",),
                       shifted(0.1, dict(zip(SEEDS, [0.1, -0.08, 0.03])), SEEDS[:3]), dev),
            "gamma10": ("infoprompt_plus", ("method.head_weight=10",), shifted(-0.1, NOISE, SEEDS[:3]), dev)},
            seeds=SEEDS[:3], described=GAMMA)}
    sweeps = {}
    for steps, flat in ((1000, 0.0), (300, 0.0)):
        dirs = []
        for i, init in enumerate(["random", "vocab", "text", "label_words"]):
            for seed, jitter in zip(SEEDS[:3], (-0.01, 0.0, 0.01)):
                dirs.append(stand_in(root / f"r{steps}", "prompt_tuning", seed, 0.4 + 0.1 * i + jitter, 0.6, steps,
                                     f"prompt.init={init}"))
                dirs.append(stand_in(root / f"r{steps}", "infoprompt_plus", seed, 0.6 + flat + jitter, 0.6, steps,
                                     f"prompt.init={init}"))
        sweeps[steps] = write_robustness(dirs, ["prompt_tuning", "infoprompt_plus"], root / f"r{steps}",
                                         name=f"cb-16shot-{steps}")
    return root, folders, sweeps


def summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def test_holds_worse_equal_and_too_few_seeds(archive):
    root, folders, sweeps = archive
    text = section({"compare": list(folders.values()), "robustness": list(sweeps.values())})
    score = "Does InfoPrompt score better than prompt tuning?"
    plus, info = closing(text, score, "infoprompt_plus"), closing(text, score, "infoprompt")
    assert "**holds** in `cb-16shot-1000steps`" in plus and "**does not hold (worse)** in `cb-16shot-1000steps`" in info
    equal = summary(folders["few"])["power_vs_prompt_tuning"]["infoprompt"]["test"]
    bound = max(-equal["t_interval"][0], equal["t_interval"][1])
    assert equal["verdict"] == "equal" and \
        f"**equal within ±{bound:.4f}** (inside the ±0.05 margin) in `sst2-budget64-1000steps`" in info
    few = summary(folders["few"])["power_vs_prompt_tuning"]["infoprompt_plus"]["test"]
    need = seeds_needed(few["sd"], 0.05)
    assert few["verdict"] == "too few seeds" and minimum_detectable(few["sd"], need) <= 0.05 < \
        minimum_detectable(few["sd"], need - 1)
    assert (f"**cannot say** (too few seeds: MDE {few['mde']:.4f} with 3 seeds; about {need} seeds would detect a "
            f"true ±0.05 with 80 % power at the observed spread) in `sst2-budget64-1000steps`") in plus
    assert "not in `lw-only-1000steps`" in info and "`infoprompt` is not in this comparison" in text
    # each verdict of a family's test carries its Holm-adjusted p; an interval's word alone is "not after Holm"
    raw = next(line for line in text.split(score)[1].splitlines() if line.startswith("- `infoprompt_plus`: "))
    assert "**holds** (Holm p " in raw and ": not after Holm) in `sst2-budget64-1000steps`" in raw
    converge = closing(text, "Does InfoPrompt converge faster than prompt tuning?", "infoprompt_plus")
    assert converge.startswith("- `infoprompt_plus`: **holds** on the early window in `cb-16shot-1000steps`")
    assert "**does not hold (worse)** on the early window in `cb-16shot-1000steps`" in \
        closing(text, "converge faster", "infoprompt")
    auc = summary(folders["cb"])["power_vs_prompt_tuning"]["infoprompt_plus"]["dev_auc"]
    assert f"dev AUC {auc['mean']:+.4f} [{auc['t_interval'][0]:+.4f}, " in text
    # the robustness sweep: infoprompt_plus flat over the inits, prompt tuning spread by them
    robust = closing(text, "less sensitive to the prompt's initialisation?", "infoprompt_plus")
    assert robust == "- `infoprompt_plus`: **less spread in these runs** (untested) in `cb-16shot-1000`."
    assert closing(text, "less sensitive to the prompt's initialisation?", "infoprompt").startswith(
        "- `infoprompt`: **cannot say**: not in `cb-16shot-1000`")


def test_experiments_that_name_no_claim_are_kept_out(archive):
    root, folders, sweeps = archive
    text = section({"compare": list(folders.values()), "robustness": list(sweeps.values())})
    assert "cb-16shot-300steps" not in text and "cb-16shot-300`" not in text
    assert ("Read here: `cb-16shot-1000steps`, `sst2-budget64-1000steps`, `lw-only-1000steps`, `cb-16shot-gamma`, "
            "`cb-16shot-1000` (robustness).") in text


def test_no_evidence_yet(archive):
    root, folders, sweeps = archive
    text = section({"compare": [folders["short"]], "robustness": [sweeps[300]]})
    assert "**No declared experiment that names a claim has been run yet**" in text
    for question in ("converge faster", "score better"):
        for method in ("infoprompt", "infoprompt_plus"):
            assert closing(text, question, method) == (f"- `{method}`: **cannot say**: no declared "
                                                       "comparison against `prompt_tuning` yet.")
    assert "No declared comparison holds `infoprompt_plus` beside a label-words arm yet." in text
    waiting = text.split("### What this section cannot say yet")[1]
    assert "`cb-16shot-1000steps-10seeds`" in waiting and "`cb-16shot-1000`" in waiting
    assert "`cb-16shot-300steps`" not in waiting  # it names no claim
    body = text.split("### 1. Faster convergence")[1]  # the claims themselves, not the intro's definitions
    assert "**holds**" not in body and "**does not hold" not in body and "**equal" not in body


def test_the_label_words_control(archive):
    root, folders, sweeps = archive
    text = section({"compare": [folders["cb"], folders["lw"]], "robustness": []})
    control = text.split("### Control: the head loss or the label words?")[1].split("###")[0]
    cb = next(line for line in control.splitlines() if line.startswith("- `cb-16shot-1000steps`"))
    assert "test acc `infoprompt_plus` − `pt_label_words`" in cb and "**equal within ±" in cb
    plus = summary(folders["lw"])["paired_vs_prompt_tuning"]
    diffs = [a - b for a, b in zip(plus["infoprompt_plus"]["differences"], plus["pt_label_words"]["differences"])]
    lw = next(line for line in control.splitlines() if line.startswith("- `lw-only-1000steps`"))
    assert f"{sum(diffs) / len(diffs):+.4f} [" in lw and ": **more than the label words**." in lw


def test_the_gamma_dose_response(archive):
    root, folders, sweeps = archive
    text = section({"compare": [folders["gamma"]], "robustness": []})
    block = text.split("### Control: the head loss's weight γ")[1].split("###")[0]
    assert "| `infoprompt_plus` | 0.1 | 0.6500 ± 0.0500 |" in block and "| `gamma10` | 10.0 |" in block
    assert "- γ = 10.0 (`gamma10`) against γ = 0.1: test **lower**;" in block
    assert "- γ = 1.0 (`gamma1`) against γ = 0.1: test **cannot say**" in block
    # a γ comparison is no evidence on the claims: its baseline is infoprompt_plus, not prompt tuning
    assert closing(text, "score better", "infoprompt_plus").endswith("no declared comparison against "
                                                                    "`prompt_tuning` yet.")


def test_lacking_lists_arms_seeds_steps_and_the_plan(archive):
    root, folders, sweeps = archive
    wants = [declared("sst2-budget64-1000steps", MAIN, seeds=[13, 21, 42, 87],
                      arms=("prompt_tuning", "infoprompt", "infoprompt_plus", "pt_label_words")),
             declared("cb-16shot-300steps", [], arms=("prompt_tuning", "infoprompt_plus")),
             declared("cb-16shot-1000", ["robustness"], "robustness", seeds=SEEDS[:4],
                      arms=("prompt_tuning", "infoprompt_plus")),
             declared("new-one", MAIN, seeds=[1, 2]),
             declared("cb-16shot-1000steps", MAIN)]
    wants[3].plan = {"wanted": 6, "done": 0, "to_train": 6, "seconds": 5400.0, "unknown": 0, "device": "a CPU",
                     "basis": "same task, split, method, steps and device"}
    have = {("compare", f.name): summary(f) for f in (folders["few"], folders["short"], folders["cb"])}
    have[("robustness", "cb-16shot-1000")] = summary(sweeps[1000])
    lines = lacking_lines(wants, have)
    assert lines[0].startswith("- `sst2-budget64-1000steps` (compare: cb 16-shot, 1000 steps, arms prompt_tuning, "
                               "infoprompt, infoprompt_plus, pt_label_words, 4 seeds): no runs of pt_label_words; "
                               "prompt_tuning lacks seed 87; infoprompt lacks seed 87; infoprompt_plus lacks seed 87")
    assert "its runs trained 300 steps, the file says 1000" in lines[1]
    assert ("prompt_tuning has fewer seeds than the file's at random (3 of 4), vocab (3 of 4), text (3 of 4), "
            "label_words (3 of 4)") in lines[2] and lines[2].endswith("run it: `make experiment E=robustness/cb-16shot-1000`.")
    assert lines[3] == ("- `new-one` (compare: cb 16-shot, 1000 steps, arms prompt_tuning, infoprompt, infoprompt_plus, "
                        "2 seeds): not run yet; 6 of 6 runs to train, about 1.5 h in one process on a CPU (same task, "
                        "split, method, steps and device); run it: `make experiment E=new-one`.")
    assert len(lines) == 4  # the comparison the archive holds in full lacks nothing


EXPERIMENT = """kind: compare
task: cb
steps: {steps}
model: {model}
arms:
  prompt_tuning: prompt_tuning
  infoprompt: infoprompt
  infoprompt_plus: infoprompt_plus
seeds: [{seeds}]
claims: [convergence, accuracy]
"""


@pytest.mark.slow
def test_a_new_experiment_file_shows_up_in_the_report_with_its_plan(tmp_path):
    """The report reads the experiments folder it is pointed at: a run comparison is read for the claims, and a new
    file, with no code change, is listed as not run with its plan."""
    from lit_infoprompt.sweep.reporting import report

    dev = {s: 0.6 for s in SEEDS[:2]}
    runs = tmp_path / "runs"
    comparison(runs, "semeval-budget256-1000steps", {
        "prompt_tuning": ("prompt_tuning", (), shifted(0, seeds=SEEDS[:2]), dev),
        "infoprompt": ("infoprompt", (), shifted(0.01, NOISE, SEEDS[:2]), dev)}, seeds=SEEDS[:2])
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    model = tmp_path / "tiny-model"
    (experiments / "semeval-budget256-1000steps.yaml").write_text(EXPERIMENT.format(
        steps=1000, model=model, seeds="13, 21, 42"))
    (experiments / "brand-new.yaml").write_text(EXPERIMENT.format(steps=200, model=model, seeds="5, 6"))
    (tmp_path / "docs").mkdir()
    text = report(str(runs), str(tmp_path / "docs/RESULTS.md"), experiments=str(experiments)).read_text()
    order = [text.index(h) for h in ("## At a glance", "## The paper's claims on this backbone (1000 steps)",
                                     "## What the declared experiments still lack")]
    assert order == sorted(order)
    assert "Read here: `semeval-budget256-1000steps`." in text
    assert "- `infoprompt_plus`: **cannot say**: not in `semeval-budget256-1000steps`." in text
    lack = text.split("## What the declared experiments still lack")[1].split("\n## ")[0]
    assert ("- `brand-new` (compare: cb 16-shot, 200 steps, arms prompt_tuning, infoprompt, infoprompt_plus, 2 seeds): "
            "not run yet; 6 of 6 runs to train") in lack and "run it: `make experiment E=brand-new`." in lack
    assert ("- `semeval-budget256-1000steps` (compare: cb 16-shot, 1000 steps, arms prompt_tuning, infoprompt, "
            "infoprompt_plus, 3 seeds): no runs of infoprompt_plus; prompt_tuning lacks seed 42; infoprompt lacks "
            "seed 42") in lack
    assert "`brand-new`" in text.split("### What this section cannot say yet")[1]


def verdict(v: str, sd: float = 0.05) -> dict:
    return {"verdict": v, "t_interval": [-0.01, 0.01], "margin": 0.05, "n": 5, "sd": sd, "mde": 0.02, "mean": 0.0}


@pytest.mark.parametrize("auc, steps, expected", [
    ("better", "too few seeds", "**holds** on dev AUC (steps to the target: too few seeds)"),
    ("equal", "better", "**holds** on steps to the target (dev AUC: equal)"),
    ("worse", "equal", "**does not hold (worse)** on dev AUC (steps to the target: equal)"),
    ("better", "worse", "**mixed** (dev AUC better, steps to the target worse)"),
    ("equal", "equal", "**equal within ±0.0100** (inside the ±0.05 margin) on dev AUC and **equal within ±0 steps**"),
    ("too few seeds", "equal", "**cannot say** (dev AUC: too few seeds: MDE 0.0200 with 5 seeds; about"),
])
def test_dev_auc_and_steps_make_one_convergence_word(auc, steps, expected):
    from lit_infoprompt.analysis.claims_report import both

    assert both(verdict(auc), verdict(steps)).startswith(expected)


def test_too_few_seeds_says_when_the_seeds_would_already_do():
    from lit_infoprompt.analysis.claims_words import too_few

    assert too_few(verdict("too few seeds", sd=0.01), 4).endswith(
        "which already detects a true ±0.05 with 80 % power, yet the interval reaches past it")
    assert too_few(verdict("too few seeds", sd=5.0), 4).endswith(
        "even 1000 seeds would not detect a true ±0.05 at the observed spread")


@pytest.mark.slow
def test_a_piece_whose_runs_a_larger_comparison_holds_is_read_through_it(tmp_path):
    """The 5-seed piece that chose the rates and the piece that added seeds at them: both keep their evidence
    lines, the closing verdicts come from the larger one only; a comparison at another prompt lr is its own."""
    seeds = SEEDS + [1001, 1002, 1003]
    noise = {**NOISE, 1001: 0.015, 1002: -0.005, 1003: 0.005}
    dev, plus_dev = {s: 0.6 for s in seeds}, {s: 0.7 + noise[s] for s in seeds}

    def arms(lr: str = "0.001") -> dict:
        return {"prompt_tuning": ("prompt_tuning", (f"optim.prompt_lr={lr}",), shifted(0, seeds=seeds), dev),
                "infoprompt_plus": ("infoprompt_plus", (f"optim.prompt_lr={lr}",),
                                    shifted(0.10, noise, seeds), plus_dev)}

    small = comparison(tmp_path, "cb-16shot-1000steps", arms(), seeds=SEEDS)
    large = comparison(tmp_path, "cb-16shot-1000steps-8seeds", arms(), seeds=seeds)
    other = comparison(tmp_path, "cb-16shot-1000steps-lr", arms("0.01"), seeds=SEEDS[:3])
    text = section({"compare": [small, large, other], "robustness": []})
    for question in ("score better", "converge faster"):
        plus = closing(text, question, "infoprompt_plus")
        assert "in `cb-16shot-1000steps-8seeds`" in plus and "in `cb-16shot-1000steps;" not in plus \
            and "in `cb-16shot-1000steps`" not in plus and "in `cb-16shot-1000steps-lr`" in plus
    assert text.count("Read through a larger comparison (the same runs at the same rates, more seeds): "
                      "`cb-16shot-1000steps` through `cb-16shot-1000steps-8seeds`.") == 2
    assert "- `cb-16shot-1000steps` (cb 16-shot, 5 seeds), acc:" in text  # its own numbers stay listed
    # without the larger one, the piece speaks for itself
    alone = section({"compare": [small], "robustness": []})
    assert "in `cb-16shot-1000steps`" in closing(alone, "score better", "infoprompt_plus") and "Read through" not in alone


@pytest.mark.slow
def test_the_label_words_control_closes_on_the_largest_piece(tmp_path):
    """A piece read through a larger one keeps its line in the control but gives the closing sentence no verdict:
    on 5 seeds the difference to the label words is too noisy, on 8 it is clear, and only the 8 speak."""
    seeds = SEEDS + [1001, 1002, 1003]
    noise = {**NOISE, 1001: 0.015, 1002: -0.005, 1003: 0.005}
    dev = {s: 0.6 for s in seeds}
    wide = {**{s: 0.12 * (-1) ** i for i, s in enumerate(SEEDS)}, 1001: 0.06, 1002: 0.07, 1003: 0.065}

    def arms() -> dict:
        return {"prompt_tuning": ("prompt_tuning", (), shifted(0, seeds=seeds), dev),
                "infoprompt_plus": ("infoprompt_plus", (), shifted(0.10, noise, seeds), dev),
                "pt_label_words": ("prompt_tuning", ("prompt.init=label_words",), shifted(0.05, wide, seeds), dev)}

    described = {"prompt_tuning": PT, "pt_label_words": LW}
    small = comparison(tmp_path, "cb-16shot-1000steps", arms(), seeds=SEEDS, described=described)
    large = comparison(tmp_path, "cb-16shot-1000steps-8seeds", arms(), seeds=seeds, described=described)
    text = section({"compare": [small, large], "robustness": []})
    control = text.split("### Control: the head loss or the label words?")[1].split("###")[0]
    assert "- `cb-16shot-1000steps` (cb 16-shot, 5 seeds): test acc" in control  # its own numbers stay listed
    words = closing(control, "do more than starting the prompt at the label words?", "infoprompt_plus")
    assert "in `cb-16shot-1000steps-8seeds`" in words and "in `cb-16shot-1000steps`" not in words
    assert "`cb-16shot-1000steps` through `cb-16shot-1000steps-8seeds`." in control
    assert "- `infoprompt`:" not in control  # the control is infoprompt_plus's alone


@pytest.mark.slow
def test_the_bottleneck_control_reads_either_arm_first(tmp_path):
    """infoprompt − prompt_tuning_bottleneck per seed, whether the comparison's first arm is infoprompt (the paired
    differences are then to it) or prompt tuning (both arms' differences to it, subtracted)."""
    dev = {s: 0.6 for s in SEEDS}
    arms = {"infoprompt": ("infoprompt", (), shifted(0.10, NOISE), dev),
            "prompt_tuning_bottleneck": ("prompt_tuning_bottleneck", (), shifted(0.0), dev),
            "prompt_tuning": ("prompt_tuning", (), shifted(0.0, {s: -n for s, n in NOISE.items()}), dev)}
    first = comparison(tmp_path / "a", "sst2-budget64-1000steps-bottleneck", arms)
    base = comparison(tmp_path / "b", "cb-16shot-1000steps", {k: arms[k] for k in reversed(list(arms))})
    expected = statistics.fmean(0.10 + NOISE[s] for s in SEEDS)
    for folder in (first, base):
        text = section({"compare": [folder], "robustness": []})
        block = text.split("### Control: the information terms or the bottleneck?")[1].split("###")[0]
        line = next(line for line in block.splitlines() if line.startswith(f"- `{folder.name}`"))
        assert f"`infoprompt` − `prompt_tuning_bottleneck` {expected:+.4f} [" in line
        assert line.endswith(": **the information terms add to the bottleneck**.")
    none = section({"compare": [], "robustness": []})
    assert "No declared comparison holds `infoprompt` beside `prompt_tuning_bottleneck` yet." in none

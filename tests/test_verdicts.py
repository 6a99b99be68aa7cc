"""The one-page verdict table of docs/RESULTS.md, recomputed from the committed run files without the report code:
each row's paired difference, 95 % interval and p value from the runs' summary.json (test metric) and curve.csv
(mean dev score over the first fifth of the steps), and the Holm adjustment by hand over each claim's rows. Plus
Holm's method itself, and the rows' order of words: a claim holds only with the adjusted p below 0.05."""

import csv
import json
import math
import re
from pathlib import Path

import pytest
from scipy import stats

from lit_infoprompt.analysis.verdicts import claim_verdict, holm

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT / "docs/results"
ROW = re.compile(r"^\| (faster|better) \S.*? \| `(?P<comparison>[^`]+)` \| [^|]+ \| `(?P<form>[^`]+)` \| "
                 r"(?P<mean>[+-]\d\.\d{4}) \[(?P<low>[+-]\d\.\d{4}), (?P<high>[+-]\d\.\d{4})\] \((?P<n>\d+) seeds\) \| "
                 r"(?P<p>[^|]+) \| (?P<holm>[^|]+) \| \*\*(?P<verdict>[^*]+)\*\* \| (?P<evidence>[^|]+) \|$")


def table_rows() -> list:
    text = (ROOT / "docs/RESULTS.md").read_text()
    block = text.split("## The answer on one page")[1].split("\n## ")[0]
    rows = []
    for line in block.splitlines():
        found = ROW.match(line)
        if found:
            rows.append({"claim": "convergence" if line.startswith("| faster") else "accuracy", **found.groupdict()})
    return rows


def run_scores(comparison: str, form: str) -> dict:
    """{arm: {seed: (test score, early dev)}} for the baseline and ``form``, from the comparison's runs at the rate
    its summary reports for each arm; plain presets only (prompt.init as the preset leaves it)."""
    folder = ARCHIVE / "compare" / comparison
    summary = json.loads((folder / "summary.json").read_text())
    key, dev = summary["test_metric"], summary["metric"]
    out = {}
    for run in json.loads((folder / "spec.json").read_text())["runs"]:
        run_dir = ARCHIVE / run
        s = json.loads((run_dir / "summary.json").read_text())
        config = (run_dir / "config.yaml").read_text()
        init = re.search(r"^  init: (\S+)$", config, re.M).group(1)
        lr = float(re.search(r"^  prompt_lr: (\S+)$", config, re.M).group(1))
        arm = s["method"]
        if arm not in ("prompt_tuning", form) or init != "vocab" or lr not in summary["methods"][arm]["prompt_lr"]:
            continue
        steps = s["steps"]
        with open(run_dir / "curve.csv") as f:
            early = [float(r[dev]) for r in csv.DictReader(f) if 0 < int(r["step"]) <= 0.2 * steps and r[dev]]
        out.setdefault(arm, {})[s["seed"]] = (s[key], sum(early) / len(early))
    return out


def by_hand(diffs: list) -> tuple:
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    p = 2 * stats.t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1)
    return mean, mean - half, mean + half, p


def holm_by_hand(ps: list) -> list:
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    adjusted, running = [0.0] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        adjusted[i] = running
    return adjusted


def shown(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


@pytest.mark.skipif(not (ARCHIVE / "compare").is_dir(), reason="no committed comparisons")
def test_every_number_of_the_verdict_table_recomputes_from_the_run_files():
    rows = table_rows()
    assert len(rows) >= 20 and {r["claim"] for r in rows} == {"convergence", "accuracy"}
    for row in rows:
        scores = run_scores(row["comparison"], row["form"])
        base, other = scores["prompt_tuning"], scores[row["form"]]
        seeds = sorted(set(base) & set(other))
        index = 1 if row["claim"] == "convergence" else 0
        mean, low, high, p = by_hand([other[s][index] - base[s][index] for s in seeds])
        assert int(row["n"]) == len(seeds), row
        assert (row["mean"], row["low"], row["high"]) == (f"{mean:+.4f}", f"{low:+.4f}", f"{high:+.4f}"), row
        assert row["p"].strip() == shown(p), row
        row["p_value"] = p
    for claim in ("convergence", "accuracy"):
        family = [r for r in rows if r["claim"] == claim]
        for row, adjusted in zip(family, holm_by_hand([r["p_value"] for r in family])):
            assert row["holm"].strip() == shown(adjusted), row
            if row["verdict"].startswith("holds"):
                assert adjusted < 0.05 and float(row["low"]) > 0


def test_holm_is_statsmodels_and_agrees_with_the_definition():
    ps = [0.01, 0.04, 0.03, 0.005, None, 0.2]
    adjusted = holm(ps)
    assert adjusted[4] is None
    known = [p for p in ps if p is not None]
    assert [a for a in adjusted if a is not None] == pytest.approx(holm_by_hand(known))
    assert adjusted[3] == pytest.approx(0.025) and adjusted[0] == pytest.approx(0.04)


@pytest.mark.parametrize("interval_verdict, adjusted, expected", [
    ("better", 0.01, "holds"), ("better", 0.055, "not after Holm"), ("worse", 0.01, "does not hold (worse)"),
    ("worse", 0.2, "worse, not after Holm"), ("equal", 1.0, "equal"), ("too few seeds", 0.5, "cannot say")])
def test_a_claim_holds_only_with_the_adjusted_p_below_005(interval_verdict, adjusted, expected):
    row = {"claim": "accuracy", "difference": {"verdict": interval_verdict}, "p_adjusted": adjusted}
    assert claim_verdict(row) == expected


def test_no_faster_but_higher_is_said_in_those_words():
    row = {"claim": "convergence", "difference": {"verdict": "equal"}, "p_adjusted": 1.0,
           "best_dev": {"verdict": "better"}}
    assert claim_verdict(row) == "equal; no faster, ends higher (best dev)"


def test_one_initialisation_cannot_decide_the_robustness_verdict_alone():
    from lit_infoprompt.analysis.initialisations import init_interval, seeds_to_tell, spread, spread_verdict

    def row(means, sd=0.01, n=3):
        return {"per_init": {i: {"mean": m, "std": sd, "n": n} for i, m in zip(["random", "vocab", "text", "lw"], means)}}

    base = row([0.60, 0.61, 0.59, 0.60])
    outlier = row([0.60, 0.60, 0.61, 0.45])  # spread by one initialisation only
    assert spread_verdict(outlier, base) == "no less spread"
    assert spread_verdict(outlier, base, leave_out="lw") != "no less spread"  # without it, the verdict changes
    assert spread(outlier, "lw") < spread(outlier)
    assert seeds_to_tell(row([0.60, 0.62, 0.58, 0.60], sd=0.05), base) > 3  # noisy cells need more seeds
    low, high = init_interval({"mean": 0.6, "std": 0.01, "n": 3})
    assert low < 0.6 < high and init_interval({"mean": 0.6, "std": 0.0, "n": 1}) is None

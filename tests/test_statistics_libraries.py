"""The statistics that a pinned library computes (scipy, statsmodels) against an independent formula or the previous
hand-written code, on the archive's own numbers (docs/results): the paired differences of every comparison's
summary.json, the initialisation cells of every robustness summary.json, the test sizes and accuracies of every
archived run. And the statistics that stay hand-written because the library call changes a committed digit:
each equals the library within 1e-12 and the committed summary.json exactly (docs/development.md, "Statistics:
library or hand-written")."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from lit_infoprompt.analysis import power
from lit_infoprompt.analysis.claims_words import MOST_SEEDS, seeds_needed
from lit_infoprompt.analysis.initialisations import init_interval

ARCHIVE = Path(__file__).resolve().parent.parent / "docs" / "results"
CLOSE = 1e-12


def archive(kind: str) -> list:
    """Every summary.json under docs/results/<kind> (skips the test where the archive is absent)."""
    if not (ARCHIVE / kind).is_dir():
        pytest.skip(f"no archive at {ARCHIVE / kind}")
    found = sorted((ARCHIVE / kind).rglob("summary.json"))
    assert found, f"no summary.json under {ARCHIVE / kind}"
    return found


def compared_differences() -> list:
    """(comparison, method, quantity, Difference as dict) of every paired difference in the archive's comparisons."""
    out = []
    for path in archive("compare"):
        summary = json.loads(path.read_text())
        for key in (k for k in summary if k.startswith("power_vs_")):
            for method, quantities in summary[key].items():
                out += [(path.parent.name, method, name, d) for name, d in quantities.items()]
    assert len(out) > 100
    return out


def accuracy_counts() -> set:
    """(correct, n) of every archived run's test accuracy, as ``power.test_interval`` reads them."""
    pairs = set()
    for path in archive("runs"):
        summary = json.loads(path.read_text())
        n = power.test_size(summary, path.parent) if "test_acc" in summary else None
        if n is not None:
            pairs.add((round(summary["test_acc"] * n), n))
    assert len(pairs) > 50
    return pairs


def init_cells() -> list:
    cells = []
    for path in archive("robustness"):
        for row in json.loads(path.read_text())["methods"].values():
            cells += list(row["per_init"].values())
    assert cells
    return cells


# -- moved to a library ------------------------------------------------------------------------------
def previous_clopper_pearson(correct: int, n: int, confidence: float = 0.95):
    """power.clopper_pearson before it called statsmodels."""
    tail = (1 - confidence) / 2
    low = 0.0 if correct == 0 else float(stats.beta.ppf(tail, correct, n - correct + 1))
    high = 1.0 if correct == n else float(stats.beta.ppf(1 - tail, correct + 1, n - correct))
    return low, high


def test_clopper_pearson_is_statsmodels_and_keeps_every_archived_digit():
    tail = (1 - power.CONFIDENCE) / 2
    for correct, n in sorted(accuracy_counts()):
        low, high = power.clopper_pearson(correct, n)
        assert (low, high) == previous_clopper_pearson(correct, n), (correct, n)  # bit for bit: summary.json
        # the definition: P(X >= correct | low) = P(X <= correct | high) = the tail
        if correct > 0:
            assert stats.binom.sf(correct - 1, n, low) == pytest.approx(tail, abs=CLOSE)
        if correct < n:
            assert stats.binom.cdf(correct, n, high) == pytest.approx(tail, abs=CLOSE)


def test_clopper_pearson_by_hand_at_the_ends():
    # no success in n: the upper end solves (1 - p)^n = 0.025; all n: the lower end solves p^n = 0.025
    for n in (1, 10, 56, 277):
        assert power.clopper_pearson(0, n) == (0.0, pytest.approx(1 - 0.025 ** (1 / n), abs=CLOSE))
        assert power.clopper_pearson(n, n) == (pytest.approx(0.025 ** (1 / n), abs=CLOSE), 1.0)
    assert power.clopper_pearson(0, 10)[1] == pytest.approx(0.30849710781876, abs=1e-12)


def t_quantile_df2(p: float) -> float:
    """Student's t quantile with 2 degrees of freedom in closed form: (2p - 1) / sqrt(2 p (1 - p))."""
    return (2 * p - 1) / math.sqrt(2 * p * (1 - p))


def test_init_interval_is_scipys_t_interval_on_the_archived_cells():
    cells = init_cells()
    assert any(c["n"] == 3 for c in cells)
    for cell in cells:
        interval = init_interval(cell)
        if cell["n"] < 2:
            assert interval is None
            continue
        half = float(stats.t.ppf(0.975, cell["n"] - 1)) * cell["std"] / math.sqrt(cell["n"])  # the previous code
        previous = (cell["mean"] - half, cell["mean"] + half)
        assert interval == (pytest.approx(previous[0], abs=CLOSE), pytest.approx(previous[1], abs=CLOSE))
        assert [f"{x:.3f}" for x in interval] == [f"{x:.3f}" for x in previous]  # the report's digits
        if cell["n"] == 3:  # independent: the closed-form quantile
            half = t_quantile_df2(0.975) * cell["std"] / math.sqrt(3)
            assert interval == (pytest.approx(cell["mean"] - half, abs=CLOSE),
                                pytest.approx(cell["mean"] + half, abs=CLOSE))


def test_init_interval_by_hand():
    # df 1 is the Cauchy distribution: t(0.975, 1) = tan(0.475 pi) = 12.7062047
    low, high = init_interval({"mean": 0.5, "std": 0.1, "n": 2})
    assert high - 0.5 == pytest.approx(math.tan(0.475 * math.pi) * 0.1 / math.sqrt(2), abs=CLOSE)
    assert 0.5 - low == pytest.approx(12.706204736174707 * 0.1 / math.sqrt(2), abs=CLOSE)
    assert init_interval({"mean": 0.5, "std": 0.1, "n": 1}) is None


# -- already a library call: p value and sign test ----------------------------------------------------
def test_p_value_and_sign_test_against_formulas_on_the_archive():
    for where, method, name, d in compared_differences():
        diffs = d["differences"]
        p = power.p_value(diffs)
        assert p == d["p"], (where, method, name)
        if len(diffs) < 2:
            continue
        if d["sd"] == 0:  # the exact sign test: 2 P(X <= min(k, m - k)) for X ~ Binomial(m, 1/2), at most 1
            signs = [x > 0 for x in diffs if x != 0]
            m, k = len(signs), sum(signs)
            expected = 1.0 if not m else min(1.0, 2 * sum(math.comb(m, i) for i in range(min(k, m - k) + 1)) / 2 ** m)
        else:
            n = len(diffs)
            t = float(np.mean(diffs)) / (float(np.std(diffs, ddof=1)) / math.sqrt(n))
            expected = 2 * float(stats.t.sf(abs(t), n - 1))
        assert p == pytest.approx(expected, abs=CLOSE), (where, method, name)


def test_sign_test_by_hand():
    assert power.sign_test([0.2] * 6) == pytest.approx(2 * 0.5 ** 6, abs=CLOSE)
    assert power.sign_test([1] * 8 + [-1]) == pytest.approx(2 * 10 / 512, abs=CLOSE)


# -- kept by hand: equal to the library within 1e-12, equal to the committed numbers exactly -------------------
def test_t_interval_equals_scipys_within_rounding_and_the_archive_exactly():
    checked = 0
    for where, method, name, d in compared_differences():
        diffs = d["differences"]
        interval = power.t_interval(diffs)
        assert (list(interval) if interval else None) == d["t_interval"], (where, method, name)
        if interval is None or d["sd"] == 0:
            continue
        ci = stats.ttest_1samp(diffs, 0.0).confidence_interval(power.CONFIDENCE)
        assert interval == (pytest.approx(float(ci.low), abs=CLOSE), pytest.approx(float(ci.high), abs=CLOSE))
        checked += 1
    assert checked > 100


def test_bootstrap_interval_draws_scipys_resamples_and_keeps_the_archive():
    checked = 0
    for where, method, name, d in compared_differences():
        diffs = d["differences"]
        interval = power.bootstrap_interval(diffs)
        assert (list(interval) if interval else None) == d["bootstrap_interval"], (where, method, name)
        if interval is None or d["sd"] == 0:
            continue
        values = np.asarray(diffs, dtype=float)
        res = stats.bootstrap((values,), np.mean, n_resamples=power.RESAMPLES, method="percentile",
                              confidence_level=power.CONFIDENCE, rng=np.random.default_rng(power.BOOTSTRAP_SEED))
        draws = np.random.default_rng(power.BOOTSTRAP_SEED).integers(0, len(values), (power.RESAMPLES, len(values)))
        np.testing.assert_allclose(res.bootstrap_distribution, values[draws].mean(axis=1), rtol=0, atol=CLOSE)
        assert interval == (pytest.approx(float(res.confidence_interval.low), abs=CLOSE),
                            pytest.approx(float(res.confidence_interval.high), abs=CLOSE))
        checked += 1
    assert checked > 100


def test_power_and_mde_equal_statsmodels_and_the_archive():
    from statsmodels.stats.power import TTestPower

    checked = 0
    for where, method, name, d in compared_differences():
        if not d["sd"]:
            continue
        sd, n = d["sd"], d["n"]
        mde = power.minimum_detectable(sd, n)
        assert mde == d["mde"], (where, method, name)  # bit for bit: summary.json
        assert power.paired_power(mde, sd, n) == pytest.approx(power.POWER, abs=1e-7)
        theirs = float(TTestPower().power(effect_size=mde / sd, nobs=n, alpha=1 - power.CONFIDENCE))
        if math.isfinite(theirs):  # NaN at n = 2 for large effects: the reason it stays by hand
            assert power.paired_power(mde, sd, n) == pytest.approx(theirs, abs=CLOSE)
        for delta in (0.5 * sd, sd, 2 * sd):
            theirs = float(TTestPower().power(effect_size=delta / sd, nobs=n, alpha=1 - power.CONFIDENCE))
            if math.isfinite(theirs):
                assert power.paired_power(delta, sd, n) == pytest.approx(theirs, abs=CLOSE)
        checked += 1
    assert checked > 100


def test_power_by_hand():
    # no effect: the power is the level; large n: (z_0.975 + z_0.8) sd / sqrt(n)
    assert power.paired_power(0.0, 1.0, 10) == pytest.approx(0.05, abs=CLOSE)
    assert power.minimum_detectable(1.0, 10_000) * 100 == pytest.approx(1.959964 + 0.841621, rel=1e-3)


@pytest.mark.slow
def test_seeds_needed_meets_its_definition_on_the_archive():
    pairs = {(d["sd"], d["margin"]) for *_, d in compared_differences() if d["sd"] and d["verdict"] == "too few seeds"}
    assert pairs
    for sd, margin in sorted(pairs):
        need = seeds_needed(sd, margin)
        if need is None:
            assert power.minimum_detectable(sd, MOST_SEEDS) > margin
            continue
        assert power.minimum_detectable(sd, need) <= margin
        if need > 2:
            assert power.minimum_detectable(sd, need - 1) > margin
    # by hand: 80 % power against a true difference of one sd takes 10 paired seeds (9 give 0.748)
    assert seeds_needed(1.0, 1.0) == 10

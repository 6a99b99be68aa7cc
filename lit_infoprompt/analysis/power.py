"""How much a comparison can tell: intervals, effect sizes and the smallest difference it could have detected.

Two sources of noise, reported side by side by ``compare`` and ``report``:

* **Across seeds** (the split, the prompt's initialisation, the batch order). For a paired difference between
  two methods (same seed, same data) over n seeds: the mean with a 95 % interval from the paired t distribution
  and, as a check that assumes no normality, a percentile bootstrap over seeds; the standardised effect
  d_z = mean / sd; and the *minimum detectable difference* (MDE): the true mean difference that a two-sided
  paired t-test at alpha = 0.05 would detect with 80 % power, given n and the observed sd (exact, from the
  noncentral t distribution).
* **Within a run** (the test set is a sample too): a 95 % interval for one run's test score, exact binomial
  (Clopper-Pearson) for accuracy, and a bootstrap over test examples for any other metric, which needs the run's
  test confusion matrix (``confusion_matrix_test`` in summary.json).

``judge`` turns an interval into one of four verdicts: better, worse, equal within +-x (the interval excludes
any difference larger than the margin), or too few seeds to tell. Where every seed gives the same difference (no
spread: common for steps to a target, which move in evaluation intervals) the t interval is a point and says
nothing about the spread; the verdict then comes from the exact two-sided sign test alone (better or worse when n
same-signed differences give 2 * 0.5**n < 0.05, i.e. n >= 6; otherwise too few seeds), and there is no MDE.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from lit_infoprompt.semeval import relation_type

CONFIDENCE = 0.95
POWER = 0.80
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0  # fixed: the report is the same every time it is computed
METRIC_MARGIN = 0.05  # default equivalence margin for a score difference (accuracy, F1, MCC, dev AUC)
STEPS_MARGIN = 0.10  # default equivalence margin for steps to target, as a fraction of max_steps

# Gold class counts (in the task's label order) of test files that runs made before summary.json recorded the
# test confusion matrix read (SuperGLUE validation files; sha256): their size, and the constant predictors' scores.
KNOWN_TEST_GOLD = {
    "c6125587e9601560cb16ea223c33964c5a915568d2af68a81f651b6ef25395ec": (23, 28, 5),  # CB val.jsonl
    "ab990507bf5f35dc176cba7770a72bfa2c50a88ed72b8cc95cfbf9db95ab1af1": (146, 131),  # RTE val.jsonl
    "9f7207c88beba42cbc139de4c62ce05b23bffc189b3d561594b160e0c3920c0b": (319, 319),  # WiC val.jsonl
    "0c86a5045886e5795fe9052003873f7d94b88ed3028a33007c51d99e44fd66d9": (1237, 2033),  # BoolQ val.jsonl
    "fa61467cc251010178ed72f8ca82a0fceefc4ca9a85f87ec3b6102955e1a1f1a": (55, 45),  # COPA val.jsonl
}


# -- across seeds ------------------------------------------------------------------------------------
def t_interval(diffs: Sequence[float], confidence: float = CONFIDENCE) -> Optional[Tuple[float, float]]:
    """Interval for the mean of paired differences from the t distribution with n - 1 degrees of freedom (by hand:
    scipy's ``ttest_1samp(...).confidence_interval()`` rounds the last digit differently; docs/development.md)."""
    from scipy import stats

    if len(diffs) < 2:
        return None
    mean, sd = float(np.mean(diffs)), float(np.std(diffs, ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(diffs) - 1)) * sd / math.sqrt(len(diffs))
    return mean - half, mean + half


def bootstrap_interval(diffs: Sequence[float], confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> Optional[Tuple[float, float]]:
    """Percentile bootstrap interval for the mean: the seeds resampled with replacement (by hand: scipy's
    ``bootstrap`` draws the same resamples but rounds some percentiles' last digit differently)."""
    if len(diffs) < 2:
        return None
    values = np.asarray(diffs, dtype=float)
    draws = np.random.default_rng(seed).integers(0, len(values), size=(resamples, len(values)))
    means = values[draws].mean(axis=1)
    tail = (1 - confidence) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def effect_size(diffs: Sequence[float]) -> Optional[float]:
    """Cohen's d_z: mean difference / sd of the differences (None when undefined)."""
    if len(diffs) < 2:
        return None
    sd = float(np.std(diffs, ddof=1))
    return None if sd == 0 else float(np.mean(diffs)) / sd


def paired_power(delta: float, sd: float, n: int, alpha: float = 1 - CONFIDENCE) -> float:
    """Power of the two-sided paired t-test at level alpha to detect a true mean difference delta: statsmodels'
    ``TTestPower().power`` by hand, which is NaN at n = 2 for large effects and differs in the last digit."""
    from scipy import stats

    df = n - 1
    critical = stats.t.ppf(1 - alpha / 2, df)
    shift = delta * math.sqrt(n) / sd
    wrong_side = float(stats.nct.cdf(-critical, df, shift))  # NaN far in the tail, where it is ~0
    return float(stats.nct.sf(critical, df, shift)) + (wrong_side if math.isfinite(wrong_side) else 0.0)


def minimum_detectable(sd: float, n: int, alpha: float = 1 - CONFIDENCE, power: float = POWER) -> Optional[float]:
    """The smallest true mean difference the paired t-test detects with the given power (None: n < 2;
    0 when the differences have no spread; by hand: statsmodels' ``solve_power`` stops ~1e-7 from this root)."""
    from scipy.optimize import brentq

    if n < 2:
        return None
    if sd == 0:
        return 0.0
    high = sd
    while paired_power(high, sd, n, alpha) < power:
        high *= 2
    return float(brentq(lambda d: paired_power(d, sd, n, alpha) - power, 0.0, high, xtol=sd * 1e-9))


class Words(str, Enum):
    """A verdict vocabulary: each member is its words (a str, so summary.json keeps them and reads back as
    ``Member(text)``; printed and formatted as the words)."""

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__


class Verdict(Words):
    """What paired differences support (``judge``)."""

    BETTER = "better"
    WORSE = "worse"
    EQUAL = "equal"
    TOO_FEW = "too few seeds"


@dataclass
class Difference:
    """What the paired differences of one quantity (other - baseline, per seed) support."""

    n: int
    mean: Optional[float]
    sd: Optional[float]
    t_interval: Optional[Tuple[float, float]]
    bootstrap_interval: Optional[Tuple[float, float]]
    effect_size: Optional[float]
    mde: Optional[float]
    margin: float
    verdict: Verdict
    p: Optional[float] = None  # two-sided paired t-test p value (no spread: the exact sign test's)
    differences: Optional[List[float]] = None  # the paired differences themselves, in seed order

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def judge(interval: Optional[Tuple[float, float]], margin: float, higher_is_better: bool = True) -> Verdict:
    """better / worse when the interval excludes 0; equal when it lies inside +-margin; else too few seeds."""
    if interval is None:
        return Verdict.TOO_FEW
    low, high = interval
    if low > 0 or high < 0:
        return Verdict.BETTER if (low > 0) == higher_is_better else Verdict.WORSE
    if max(-low, high) <= margin:
        return Verdict.EQUAL
    return Verdict.TOO_FEW


def sign_test(diffs: Sequence[float]) -> float:
    """Exact two-sided sign-test p-value (scipy's binomial test of the positive differences among the non-zero
    ones at 1/2); 1 when there is none. Six same-signed differences give 2 x 0.5^6 = 0.031."""
    from scipy import stats

    signs = [d > 0 for d in diffs if d != 0]
    if not signs:
        return 1.0
    return float(stats.binomtest(sum(signs), len(signs), 0.5).pvalue)


def judge_without_spread(diffs: Sequence[float], higher_is_better: bool = True) -> Verdict:
    """The verdict where every difference is the same: the sign test alone (a zero-width t interval is no
    evidence of anything)."""
    if sign_test(diffs) < 1 - CONFIDENCE:
        return Verdict.BETTER if (diffs[0] > 0) == higher_is_better else Verdict.WORSE
    return Verdict.TOO_FEW


def difference(diffs: Sequence[float], margin: float, higher_is_better: bool = True) -> Difference:
    diffs = [float(d) for d in diffs]
    n = len(diffs)
    sd = float(np.std(diffs, ddof=1)) if n > 1 else None
    interval = t_interval(diffs)
    if sd == 0:
        verdict, mde = judge_without_spread(diffs, higher_is_better), None
    else:
        verdict, mde = judge(interval, margin, higher_is_better), minimum_detectable(sd, n) if sd is not None else None
    return Difference(n=n, mean=float(np.mean(diffs)) if diffs else None, sd=sd, t_interval=interval,
                      bootstrap_interval=bootstrap_interval(diffs), effect_size=effect_size(diffs), mde=mde,
                      margin=margin, verdict=verdict, p=p_value(diffs), differences=diffs)


def p_value(diffs: Sequence[float]) -> Optional[float]:
    """Two-sided p value of the paired t-test of the differences against 0 (scipy's one-sample t-test); with no
    spread the exact sign test's; None with fewer than 2 differences."""
    from scipy import stats

    if len(diffs) < 2:
        return None
    if float(np.std(diffs, ddof=1)) == 0:
        return sign_test(diffs)
    return float(stats.ttest_1samp(diffs, 0.0).pvalue)


# -- within a run: the test set's sampling noise -------------------------------------------------------
def clopper_pearson(correct: int, n: int, confidence: float = CONFIDENCE) -> Tuple[float, float]:
    """Exact binomial (Clopper-Pearson) interval for a proportion correct / n: statsmodels' ``proportion_confint``
    with method "beta" (alpha = 1 - confidence, so its tails are the (1 - confidence) / 2 of before)."""
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(correct, n, alpha=1 - confidence, method="beta")
    return float(low), float(high)


def _f1_per_class(confusion: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(F1 per class, whether the class occurs in gold or predictions) for confusions of shape (..., C, C)."""
    tp = np.diagonal(confusion, axis1=-2, axis2=-1)
    predicted, gold = confusion.sum(-2), confusion.sum(-1)
    f1 = np.divide(2 * tp, predicted + gold, out=np.zeros(tp.shape), where=(predicted + gold) > 0)
    return f1, (predicted + gold) > 0


def accuracy(confusion: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    return np.trace(confusion, axis1=-2, axis2=-1) / confusion.sum((-2, -1))


def f1_macro(confusion: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Macro F1 over the classes that occur in gold or predictions (torchmetrics' MulticlassF1Score)."""
    f1, present = _f1_per_class(confusion)
    return (f1 * present).sum(-1) / np.maximum(present.sum(-1), 1)


def semeval_f1(confusion: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """SemEval-2010 Task 8's official score from a confusion matrix (see ``metrics.SemEvalF1``)."""
    types = [relation_type(str(label)) for label in labels]
    names = sorted({t for t in types if t is not None})
    member = np.array([[t == name for t in types] for name in names], dtype=float)  # (R, C)
    hits = np.diagonal(confusion, axis1=-2, axis2=-1) @ member.T
    precision = hits / np.maximum(confusion.sum(-2) @ member.T, 1)
    recall = hits / np.maximum(confusion.sum(-1) @ member.T, 1)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(hits.shape),
                   where=(precision + recall) > 0)
    return f1.mean(-1)


def mcc(confusion: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Matthews correlation (multiclass form, R_K), 0 when undefined (torchmetrics' MatthewsCorrCoef)."""
    n = confusion.sum((-2, -1)).astype(float)
    correct = np.trace(confusion, axis1=-2, axis2=-1).astype(float)
    predicted, gold = confusion.sum(-2).astype(float), confusion.sum(-1).astype(float)
    numerator = correct * n - (predicted * gold).sum(-1)
    denominator = np.sqrt((n ** 2 - (predicted ** 2).sum(-1)) * (n ** 2 - (gold ** 2).sum(-1)))
    return np.divide(numerator, denominator, out=np.zeros(np.shape(n)), where=denominator > 0)


def f1_binary(confusion: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """F1 of the second class (torchmetrics' BinaryF1Score; 0 when it is neither predicted nor present)."""
    f1, _ = _f1_per_class(confusion)
    return f1[..., 1]


FROM_CONFUSION: Dict[str, Callable[[np.ndarray, Sequence[str]], np.ndarray]] = {
    "acc": accuracy, "f1_macro": f1_macro, "f1": f1_binary, "semeval_f1": semeval_f1, "mcc": mcc}


def bootstrap_test_scores(metric: str, confusion: Sequence[Sequence[int]], labels: Sequence[str],
                          resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """A test metric over test sets resampled with replacement from the run's test examples: a multinomial draw
    of the confusion matrix's cells (by hand: ``scipy.stats.bootstrap`` resamples indices, another random stream)."""
    counts = np.asarray(confusion, dtype=np.int64)
    n = int(counts.sum())
    draws = np.random.default_rng(seed).multinomial(n, counts.ravel() / n, size=resamples)
    return FROM_CONFUSION[metric](draws.reshape(resamples, *counts.shape), labels)


def test_size(summary: dict, run_dir: Optional[Path]) -> Optional[int]:
    """The number of test examples: recorded in summary.json, or the sum of the test set's class counts."""
    size = (summary.get("sizes") or {}).get("test")
    if size is None:
        gold = test_gold_counts(summary, run_dir)
        size = None if gold is None else int(gold.sum())
    return size


def test_gold_counts(summary: dict, run_dir: Optional[Path]) -> Optional[np.ndarray]:
    """How many test examples each class has: from the run's test confusion matrix (gold x predicted), or known
    from the test file's checksum."""
    confusion = summary.get("confusion_matrix_test")
    if confusion is not None:
        return np.asarray(confusion).sum(-1)
    if run_dir is not None and (Path(run_dir) / "split.json").is_file():
        gold = KNOWN_TEST_GOLD.get(json.loads((Path(run_dir) / "split.json").read_text()).get("test_file_sha256"))
        return None if gold is None else np.asarray(gold)
    return None


def constant_predictors(gold: Sequence[int], labels: Sequence[str], metrics: Sequence[str]) -> Dict[str, dict]:
    """Per test metric: the best score of answering one class for every test example, and that class. The floor
    a trained model has to clear (majority rate for accuracy; always "equivalent" on MRPC's F1; MCC 0)."""
    gold = np.asarray(gold)
    out = {}
    for metric in metrics:
        if metric not in FROM_CONFUSION:
            continue
        scores = []
        for c in range(len(gold)):
            confusion = np.zeros((len(gold), len(gold)))
            confusion[:, c] = gold
            scores.append(float(FROM_CONFUSION[metric](confusion, labels)))
        best = int(np.argmax(scores))
        out[metric] = {"score": scores[best], "class": str(labels[best])}
    return out


def test_interval(metric: str, summary: dict, labels: Sequence[str], run_dir: Optional[Path] = None) -> Optional[dict]:
    """A 95 % interval for one run's test score from the test set's size alone: exact binomial for accuracy, a
    bootstrap over test examples for the others (None when the run recorded neither what it needs)."""
    score = summary[f"test_{metric}"]
    if metric == "acc":
        n = test_size(summary, run_dir)
        if n is None:
            return None
        low, high = clopper_pearson(round(score * n), n)
        return {"low": low, "high": high, "n": n, "sd": math.sqrt(score * (1 - score) / n), "method": "binomial"}
    confusion = summary.get("confusion_matrix_test")
    if confusion is None or metric not in FROM_CONFUSION:
        return None
    scores = bootstrap_test_scores(metric, confusion, labels)
    tail = (1 - CONFIDENCE) / 2
    return {"low": float(np.quantile(scores, tail)), "high": float(np.quantile(scores, 1 - tail)),
            "n": int(np.sum(confusion)), "sd": float(np.std(scores, ddof=1)), "method": "bootstrap over test examples"}


def test_noise(runs: List[dict], metric: str, labels: Sequence[str]) -> Optional[dict]:
    """Per method: the test set's own noise (median over runs of the per-run interval's half-width and sd) next
    to the spread across seeds; runs are compare's ``read_run`` records."""
    intervals = [test_interval(metric, r["summary"], labels, r.get("dir")) for r in runs]
    if not intervals or any(i is None for i in intervals):
        return None
    scores = [r["summary"][f"test_{metric}"] for r in runs]
    return {"method": intervals[0]["method"], "n": intervals[0]["n"],
            "half_width": float(np.median([(i["high"] - i["low"]) / 2 for i in intervals])),
            "sd_within": float(np.median([i["sd"] for i in intervals])),
            "sd_across": float(np.std(scores, ddof=1)) if len(scores) > 1 else None}

"""Intervals, minimum detectable differences and verdicts (power.py) against hand computations, simulations
with a known effect, and torchmetrics; and their place in a comparison."""

import json
import math

import numpy as np
import pytest
import torch

from lit_infoprompt.analysis import power
from lit_infoprompt.analysis.tables import sentence
from lit_infoprompt.train.metrics import build_metrics


def test_t_interval_by_hand():
    # mean 0.2, sd 0.1, t(0.975, df 2) = 4.302653: half-width 4.302653 * 0.1 / sqrt(3) = 0.248414
    low, high = power.t_interval([0.1, 0.2, 0.3])
    assert (low, high) == (pytest.approx(0.2 - 0.248414, abs=1e-6), pytest.approx(0.2 + 0.248414, abs=1e-6))
    assert power.t_interval([0.1]) is None


def test_bootstrap_interval_is_fixed_and_inside_the_range_of_the_data():
    diffs = [0.05, -0.02, 0.11, 0.03, 0.0, 0.07]
    low, high = power.bootstrap_interval(diffs)
    assert min(diffs) <= low < np.mean(diffs) < high <= max(diffs)
    assert power.bootstrap_interval(diffs) == (low, high)  # a fixed seed: the report is reproducible


def test_minimum_detectable_difference_has_the_stated_power_in_simulation():
    sd, n = 1.0, 10
    mde = power.minimum_detectable(sd, n)
    assert power.paired_power(mde, sd, n) == pytest.approx(0.8, abs=1e-6)
    # simulate paired experiments with a true difference of exactly the MDE: the t-test rejects ~80 % of them
    from scipy import stats
    rng = np.random.default_rng(1)
    samples = rng.normal(mde, sd, size=(20000, n))
    p = stats.ttest_1samp(samples, 0.0, axis=1).pvalue
    assert np.mean(p < 0.05) == pytest.approx(0.8, abs=0.015)
    # large n: the normal approximation (z_0.975 + z_0.8) * sd / sqrt(n) = 2.8016 sd / sqrt(n)
    assert power.minimum_detectable(1.0, 4000) * math.sqrt(4000) == pytest.approx(2.8016, rel=2e-3)
    assert power.minimum_detectable(1.0, 1) is None and power.minimum_detectable(0.0, 5) == 0.0
    assert power.minimum_detectable(0.05, 2) > power.minimum_detectable(0.05, 5) > power.minimum_detectable(0.05, 20)


def test_effect_size_is_mean_over_sd():
    assert power.effect_size([0.1, 0.2, 0.3]) == pytest.approx(2.0)
    assert power.effect_size([0.1, 0.1]) is None and power.effect_size([0.1]) is None


@pytest.mark.parametrize("mean,sd,n,verdict", [
    (0.10, 0.05, 20, "better"),  # a large effect is detected
    (-0.10, 0.05, 20, "worse"),
    (0.00, 0.01, 20, "equal"),  # no effect, small spread: equal within the margin
    (0.00, 0.10, 5, "too few seeds"),  # no effect, large spread, few seeds: the interval is too wide to tell
])
def test_simulated_known_effects_get_the_right_verdict(mean, sd, n, verdict):
    diffs = np.random.default_rng(7).normal(mean, sd, size=n)
    diffs = mean + (diffs - diffs.mean()) / diffs.std(ddof=1) * sd  # exactly the stated mean and sd
    result = power.difference(diffs, margin=0.05)
    assert result.verdict == verdict
    text = sentence("`a` vs `b`", "test acc", result.as_dict())
    assert {"better": "**better**", "worse": "**worse**", "equal": "**equal within ±",
            "too few seeds": "**too few seeds to tell**"}[verdict] in text


def test_differences_without_spread_rest_on_the_sign_test():
    # two seeds both 50 steps slower: a zero-width t interval, but nothing to conclude (sign test p = 0.5)
    two = power.difference([50, 50], margin=30, higher_is_better=False)
    assert two.t_interval == (50.0, 50.0) and two.verdict == "too few seeds" and two.mde is None
    text = sentence("`a` vs `b`", "steps to target", two.as_dict(), digits=0, unit=" steps")
    assert "**too few seeds to tell**" in text and "p = 0.5" in text
    # every seed identical and zero: no evidence of a difference, none of equality either
    assert power.difference([0, 0, 0, 0, 0], margin=30).verdict == "too few seeds"
    # five same-signed seeds: p = 0.0625, still too few; six: p = 0.03125, a verdict
    assert power.difference([-50] * 5, margin=30, higher_is_better=False).verdict == "too few seeds"
    six = power.difference([-50] * 6, margin=30, higher_is_better=False)
    assert six.verdict == "better" and "**better**" in sentence("`a` vs `b`", "steps", six.as_dict())
    assert power.difference([0.02] * 6, margin=0.05).verdict == "better"
    assert power.sign_test([1, -1, 1]) == 1.0 and power.sign_test([0.1] * 4) == 0.125
    assert power.sign_test([-2.0] * 6) == pytest.approx(2 * 0.5 ** 6) and power.sign_test([0, 0]) == 1.0
    # 8 of 9 positive: 2 x (C(9,8) + C(9,9)) / 2^9 = 20 / 512, by hand
    assert power.sign_test([1] * 8 + [-1]) == pytest.approx(20 / 512)


def test_fewer_steps_is_better_and_one_seed_is_too_few():
    assert power.difference([-100, -80, -120, -90], margin=30, higher_is_better=False).verdict == "better"
    assert power.difference([0.3], margin=0.05).verdict == "too few seeds"
    assert power.judge((-0.01, 0.06), margin=0.05) == "too few seeds"
    assert power.judge((-0.01, 0.04), margin=0.05) == "equal"


def test_clopper_pearson_by_hand():
    low, high = power.clopper_pearson(0, 10)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 10))  # 0.308497
    low, high = power.clopper_pearson(10, 10)
    assert high == 1.0 and low == pytest.approx(0.025 ** (1 / 10))
    low, high = power.clopper_pearson(28, 56)
    assert low == pytest.approx(1 - high) and 0.36 < low < 0.37  # symmetric around 0.5; 0.3635 by the beta quantile


def random_confusion(classes, n, seed):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, classes, n)
    pred = np.where(rng.random(n) < 0.5, gold, rng.integers(0, classes, n))
    if classes > 2:
        pred[pred == classes - 1] = 0  # the last class is never predicted (a case the macro averages must handle)
    confusion = np.zeros((classes, classes), dtype=int)
    np.add.at(confusion, (gold, pred), 1)
    return gold, pred, confusion


@pytest.mark.parametrize("name,labels", [
    ("acc", ["a", "b", "c"]), ("f1_macro", ["a", "b", "c", "d"]), ("mcc", ["a", "b", "c"]), ("mcc", ["no", "yes"]),
    ("f1", ["no", "yes"]),
    ("semeval_f1", ["Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Member-Collection(e1,e2)",
                    "Member-Collection(e2,e1)", "Other"]),
])
def test_metrics_from_the_confusion_matrix_equal_torchmetrics(name, labels):
    gold, pred, confusion = random_confusion(len(labels), 300, seed=len(labels))
    expected = build_metrics([name], labels, prefix="")(torch.tensor(pred), torch.tensor(gold))[name]
    assert float(power.FROM_CONFUSION[name](confusion, labels)) == pytest.approx(float(expected), abs=1e-6)
    if name == "mcc":  # where it is defined, the training metric is torchmetrics' Matthews correlation
        from torchmetrics.classification import MulticlassMatthewsCorrCoef
        reference = MulticlassMatthewsCorrCoef(len(labels))(torch.tensor(pred), torch.tensor(gold))
        assert float(expected) == pytest.approx(float(reference), abs=1e-6)


@pytest.mark.parametrize("gold, pred", [
    ([0] * 322 + [1] * 721, [1] * 1043),  # CoLA's dev file, "acceptable" for every sentence
    ([0] * 30 + [1] * 12, [0] * 42),  # the other class
    ([1] * 20, [0] * 5 + [1] * 15),  # one gold class only
])
def test_mcc_of_a_constant_predictor_is_zero_in_training_and_in_the_report(gold, pred):
    """MCC is undefined (0/0) when all predictions (or all gold labels) are one class: 0 by GLUE's and
    scikit-learn's convention, both in the metric a run selects on and in the report's bootstrap. torchmetrics'
    own value there is not 0 (0.0256 on CoLA's dev file), which made a collapsed predictor win dev selection."""
    gold_t, pred_t = torch.tensor(gold), torch.tensor(pred)
    assert float(build_metrics(["mcc"], ["no", "yes"], prefix="")(pred_t, gold_t)["mcc"]) == 0.0
    confusion = np.zeros((2, 2), dtype=int)
    np.add.at(confusion, (gold, pred), 1)
    assert power.mcc(confusion, ["no", "yes"]) == 0.0


def test_bootstrap_over_test_examples_narrows_with_more_examples():
    labels = ["a", "b", "c"]
    _, _, confusion = random_confusion(3, 200, seed=3)
    point = float(power.f1_macro(confusion, labels))
    scores = power.bootstrap_test_scores("f1_macro", confusion, labels)
    low, high = np.quantile(scores, [0.025, 0.975])
    assert low < point < high
    scores4 = power.bootstrap_test_scores("f1_macro", confusion * 4, labels)
    assert np.std(scores4) == pytest.approx(np.std(scores) / 2, rel=0.1)  # 4x the examples: half the sd


def test_a_runs_test_interval_binomial_or_bootstrap(tmp_path):
    acc = {"test_acc": 31 / 56, "sizes": {"test": 56}}
    interval = power.test_interval("acc", acc, ["a", "b"])
    assert interval["method"] == "binomial" and (interval["low"], interval["high"]) == power.clopper_pearson(31, 56)
    assert interval["sd"] == pytest.approx(math.sqrt(31 / 56 * 25 / 56 / 56))
    # an older run without the size: known from its test file's checksum in split.json
    (tmp_path / "split.json").write_text('{"test_file_sha256": "c6125587e9601560cb16ea223c33964c5a915568d2af68a8'
                                         '1f651b6ef25395ec"}')
    assert power.test_interval("acc", {"test_acc": 0.5}, ["a"], tmp_path)["n"] == 56
    assert power.test_interval("acc", {"test_acc": 0.5}, ["a"], None) is None  # nothing to go on: no interval
    _, _, confusion = random_confusion(3, 100, seed=5)
    run = {"test_f1_macro": float(power.f1_macro(confusion, "abc")), "confusion_matrix_test": confusion.tolist()}
    interval = power.test_interval("f1_macro", run, list("abc"))
    assert interval["method"] == "bootstrap over test examples" and interval["n"] == 100
    assert interval["low"] < run["test_f1_macro"] < interval["high"]


def test_constant_predictors_by_hand(tmp_path):
    """The floor a model has to clear: always one class. MRPC's dev file (129 not equivalent, 279 equivalent):
    always "1" gives F1 2*279/(279+408) and accuracy 279/408; MCC is 0 for any constant answer. CB (23, 28, 5):
    always contradiction gives accuracy 0.5 and macro-F1 (2*28/84)/3 (the two absent predictions count as 0)."""
    from lit_infoprompt.analysis.power import constant_predictors, test_gold_counts

    mrpc = constant_predictors([129, 279], [0, 1], ["f1", "acc", "mcc"])
    assert mrpc["f1"] == {"score": pytest.approx(558 / 687), "class": "1"}
    assert mrpc["acc"] == {"score": pytest.approx(279 / 408), "class": "1"}
    assert mrpc["mcc"]["score"] == 0
    cb = constant_predictors([23, 28, 5], ["entailment", "contradiction", "neutral"], ["acc", "f1_macro", "nosuch"])
    assert cb["acc"] == {"score": 0.5, "class": "contradiction"} and set(cb) == {"acc", "f1_macro"}
    assert cb["f1_macro"]["score"] == pytest.approx((56 / 84) / 3)
    # gold counts: from the run's confusion matrix (rows = gold), else from the known test file's checksum
    assert list(test_gold_counts({"confusion_matrix_test": [[3, 1], [2, 4]]}, None)) == [4, 6]
    (tmp_path / "split.json").write_text(json.dumps(
        {"test_file_sha256": "c6125587e9601560cb16ea223c33964c5a915568d2af68a81f651b6ef25395ec"}))
    assert list(test_gold_counts({}, tmp_path)) == [23, 28, 5]
    (tmp_path / "split.json").write_text(json.dumps({"test_file_sha256": "unknown"}))
    assert test_gold_counts({}, tmp_path) is None

"""The behaviour fingerprint (tests/fingerprint.py) equals the committed golden file, case by case: every method
preset and every task format still computes the same losses, MI estimates, metrics and logits on the committed
tiny models. A deliberate change of the numbers is recorded with ``python tests/fingerprint.py --write``."""

import json
import math

import pytest

import fingerprint

# Tolerance: on this machine two runs, and 1 vs 2 torch threads, give bit-identical fingerprints. A numerically
# neutral change (cross-entropy computed in float64 and cast back, i.e. a reordering-sized perturbation of every
# step) moved values by at most 6.8e-6 relative / 4e-8 absolute: at most 6% of this tolerance. A real change is far
# outside it: the prompt's learning rate 1% higher fails 8 values (worst 8x the tolerance; the head's 1% higher
# fails 262), while 0.1% still passes (the tiny random encoder barely reacts to its prompt). atol only matters for
# values near zero (MI estimates of ~1e-4 nats, an MCC of 0).
RTOL, ATOL = 1e-4, 1e-7
REGENERATE = "python tests/fingerprint.py --write"

GOLDEN = fingerprint.load_golden()
CASES = sorted(set(GOLDEN) | set(fingerprint.cases()))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.train
def test_fingerprint_matches_the_golden_file(case):
    if case not in fingerprint.cases():
        pytest.fail(f"case {case} is in {fingerprint.GOLDEN.name} but no longer computed (a method or task preset "
                    f"was removed or renamed?); if intended, regenerate with:\n{REGENERATE}")
    if case not in GOLDEN:
        pytest.fail(f"case {case} is new and not in {fingerprint.GOLDEN.name}: nothing checks it until it is added "
                    f"(regenerate with the code that the golden file was checked against):\n{REGENERATE}")
    got = fingerprint.compute([case])[case]
    found = fingerprint.differences(GOLDEN[case], got, RTOL, ATOL, case=case)
    if found:
        shown = "\n".join(found[:20]) + (f"\n... and {len(found) - 20} more" if len(found) > 20 else "")
        meta, now = fingerprint.golden_meta(), fingerprint.environment()
        env = "" if meta == now else f"\ngolden written with {meta}\nthis run uses     {now}"
        pytest.fail(f"{len(found)} value(s) differ from the golden fingerprint (rtol={RTOL}, atol={ATOL}):\n{shown}"
                    f"{env}\nif the change is intended, regenerate the golden file deliberately with:\n{REGENERATE}",
                    pytrace=False)


def test_the_comparison_can_fail():
    golden = {"loss": [1.0, 2.0, None], "acc": 0.5, "zero": 0.0}
    assert fingerprint.differences(golden, dict(golden), RTOL, ATOL) == []
    assert fingerprint.differences(golden, {**golden, "acc": 0.5 * (1 + RTOL / 2)}, RTOL, ATOL) == []  # within
    assert fingerprint.differences(golden, {**golden, "new/column": [3.0]}, RTOL, ATOL) == []  # added: ignored
    changed = fingerprint.differences(golden, {**golden, "loss": [1.0, 2.001, None]}, RTOL, ATOL, case="c")
    assert changed == ["c loss[1]: expected 2.0, got 2.001"]
    assert fingerprint.differences(golden, {**golden, "zero": 1e-6}, RTOL, ATOL)  # atol near zero
    assert fingerprint.differences(golden, {**golden, "loss": [1.0, 2.0, 0.0]}, RTOL, ATOL)  # a value where none was
    assert fingerprint.differences(golden, {**golden, "loss": [1.0, 2.0]}, RTOL, ATOL)  # a row fewer
    assert fingerprint.differences(golden, {**golden, "acc": [0.5]}, RTOL, ATOL)  # a list where a number was
    assert fingerprint.differences(golden, {**golden, "acc": math.nan}, RTOL, ATOL)
    assert fingerprint.differences({"x": math.nan}, {"x": math.nan}, RTOL, ATOL) == []
    missing = {k: v for k, v in golden.items() if k != "acc"}
    assert fingerprint.differences(golden, missing, RTOL, ATOL, case="c") == ["c acc: missing (golden has 0.5)"]


def test_the_golden_file_is_as_the_writer_writes_it():
    """Hand edits or a merge would show here: the file is exactly what ``--write`` produces from its content,
    and every float survives the round trip."""
    text = fingerprint.GOLDEN.read_text()
    data = json.loads(text)
    meta = data.pop("_meta")
    assert fingerprint.dumps(data, meta) == text
    assert set(data) == set(GOLDEN) and all(data[case] for case in data)


def test_every_preset_has_a_case():
    names = set(fingerprint.cases())
    assert {f"roberta/cb/{m}" for m in fingerprint.presets("method")} <= names
    assert {f"roberta/{t}/infoprompt" for t in fingerprint.presets("task")} <= names
    assert {"bert/cb/prompt_tuning", "bert/cb/infoprompt", "roberta/relation_task/infoprompt"} <= names

"""The theory check, short: below 1/L gradient descent decreases the head loss monotonically and
converges; far above it does not."""

from lit_infoprompt.tools.theory import check, is_monotone


def test_gradient_descent_below_one_over_L_is_monotone_and_converges(tmp_path):
    result = check(iterations=300, out=tmp_path / "theory.png")
    assert result["max_curvature_on_small_step_run"] <= result["L_estimate"]  # L really bounds the run
    assert result["small_monotone"]
    assert result["small_final_grad_norm"] < 1e-6 * max(1.0, result["start_loss"])
    assert result["small_final_loss"] < result["start_loss"]
    assert result["large_step_times_weight_decay"] > 2 and not result["large_monotone"]
    assert result["large_max_loss"] > 10 * result["start_loss"]
    assert (tmp_path / "theory.png").read_bytes()[:4] == b"\x89PNG"


def test_is_monotone_can_fail():
    assert is_monotone([3.0, 2.0, 2.0, 1.0]) and not is_monotone([3.0, 2.0, 2.5])

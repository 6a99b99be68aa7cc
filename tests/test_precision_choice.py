"""``trainer.precision=auto`` picks bf16-mixed only on a GPU that computes bf16 in hardware: torch's
``is_bf16_supported()`` also says yes for emulated bf16 (V100, T4) unless asked ``including_emulation=False``; a torch
whose function has no such argument is still served. No GPU is needed: torch.cuda is monkeypatched."""

import logging

import pytest
import torch

from lit_infoprompt.config import load_config
from lit_infoprompt.train import runner


@pytest.fixture
def gpu(monkeypatch):
    """A visible 'GPU' whose bf16 answer the test sets; the matmul-precision switch recorded, not applied."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla V100-SXM2-16GB")
    monkeypatch.setattr(torch, "set_float32_matmul_precision", lambda value: None)

    def answers(fn):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", fn)
        config = load_config(["trainer.accelerator=gpu"])
        runner.resolve_precision(config)
        return config.trainer.precision
    return answers


def test_emulated_bf16_is_not_bf16(gpu, caplog):
    asked = []

    def v100(including_emulation=True):  # torch >= 2.4 on a V100: emulated bf16 counts unless excluded
        asked.append(including_emulation)
        return including_emulation
    with caplog.at_level(logging.WARNING, logger="lit_infoprompt.train.runner"):
        assert gpu(v100) == "32-true"
    assert asked == [False]
    assert "Tesla V100-SXM2-16GB has no bf16: trainer.precision=32-true" in caplog.text


def test_native_bf16_is_bf16_mixed(gpu, caplog):
    def a100(including_emulation=True):
        return True
    with caplog.at_level(logging.WARNING, logger="lit_infoprompt.train.runner"):
        assert gpu(a100) == "bf16-mixed"
    assert "has no bf16" not in caplog.text


@pytest.mark.parametrize("native", [True, False])
def test_a_torch_without_the_argument_still_decides(gpu, native):
    def older(device=None):  # torch < 2.4: no including_emulation, and emulation is not counted
        return native
    assert gpu(older) == ("bf16-mixed" if native else "32-true")

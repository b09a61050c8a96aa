"""tami.device: one rule for ``auto`` and one precision vocabulary, for the engine and training alike."""

from __future__ import annotations

import pytest
import torch

from tami.device import autocast, autocast_dtype, resolve_device
from tami.errors import InputError


def test_auto_picks_the_best_available_kind_the_caller_supports(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")  # the engine runs on mps
    assert resolve_device("auto", kinds=("cuda", "cpu")) == torch.device("cpu")  # training does not
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("auto", local_rank=3, kinds=("cuda", "cpu")) == torch.device("cuda:3")
    assert resolve_device("cuda", local_rank=2) == torch.device("cuda:2")
    assert resolve_device("cuda:1", local_rank=2) == torch.device("cuda:1")


def test_bad_or_unavailable_devices_are_one_line_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(InputError, match=r"unknown device 'gpu'; use auto, cuda, cuda:N, mps, cpu"):
        resolve_device("gpu")
    with pytest.raises(InputError, match=r"CUDA is not available here; use --device cpu or auto"):
        resolve_device("cuda:0")
    with pytest.raises(InputError, match=r"Apple MPS is not available here"):
        resolve_device("mps")
    with pytest.raises(InputError, match=r"this runs on cuda or cpu, got device 'mps'"):
        resolve_device("mps", kinds=("cuda", "cpu"), hint="device:")
    assert resolve_device("cpu") == torch.device("cpu")


def test_precision_vocabulary():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert autocast_dtype(cpu, "fp32") is None and autocast_dtype(cuda, "fp32") is None
    assert autocast_dtype(cpu, "auto") is None and autocast_dtype(cuda, "auto") is torch.bfloat16
    assert autocast_dtype(cpu, "bf16") is torch.bfloat16 and autocast_dtype(cuda, "fp16") is torch.float16
    with pytest.raises(InputError, match="fp16 is not supported on the CPU"):
        autocast_dtype(cpu, "fp16")
    with pytest.raises(InputError, match="unknown precision 'half'; use auto, fp32, bf16, fp16"):
        autocast_dtype(cpu, "half")
    with autocast(cpu, "bf16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype is torch.bfloat16
    with autocast(cpu, "auto"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype is torch.float32

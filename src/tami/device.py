"""Where and in which precision a model runs: the one device and autocast vocabulary of the engine and training.

Devices: ``auto`` picks the best available of the kinds the caller supports, in the order CUDA, Apple MPS, CPU
(enhancement supports all three, training CUDA and CPU); ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` are checked for
availability. Precisions: ``fp32``; ``bf16`` (autocast to bfloat16, CPU and GPU); ``fp16`` (GPU only); ``auto``
(bf16 on CUDA, fp32 elsewhere).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Literal

import torch

from .errors import InputError

Precision = Literal["auto", "fp32", "bf16", "fp16"]
DEVICE_KINDS = ("cuda", "mps", "cpu")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return torch.backends.mps.is_available()
    return True


def resolve_device(name: str = "auto", *, local_rank: int | None = None,
                   kinds: Sequence[str] = DEVICE_KINDS, hint: str = "--device") -> torch.device:
    """The device ``name`` stands for.

    Args:
        name: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        local_rank: this process's GPU under ``torchrun``: ``auto`` and a bare ``cuda`` become ``cuda:local_rank``.
        kinds: the device kinds the caller can run on, best first (``auto`` picks the first available).
        hint: how the user sets the device, for the error message (``--device``, ``device:``).

    Raises:
        InputError: an unknown name, a kind the caller does not run on, or one not available here.
    """
    if name == "auto":
        kind = next(k for k in (*kinds, "cpu") if _available(k))
        if kind == "cuda" and local_rank is not None:
            return torch.device(f"cuda:{local_rank}")
        return torch.device(kind)
    choices = ", ".join(["auto", *("cuda, cuda:N" if k == "cuda" else k for k in kinds)])
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r}; use {choices}") from None
    if device.type not in DEVICE_KINDS:
        raise InputError(f"unknown device {name!r}; use {choices}")
    if device.type not in kinds:
        raise InputError(f"this runs on {' or '.join(kinds)}, got device {name!r}; use {choices}")
    if not _available(device.type):
        what = "CUDA" if device.type == "cuda" else "Apple MPS"
        raise InputError(f"device {name!r} requested but {what} is not available here; use {hint} cpu or auto")
    if device.type == "cuda" and device.index is None and local_rank is not None:
        device = torch.device(f"cuda:{local_rank}")
    return device


def autocast_dtype(device: torch.device, precision: str, *, hint: str = "--precision") -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (None: full precision).

    Raises:
        InputError: an unknown precision, or fp16 on the CPU.
    """
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision in ("bf16", "auto"):
        return torch.bfloat16
    if precision == "fp16":
        if device.type == "cpu":
            raise InputError(f"fp16 is not supported on the CPU; use {hint} bf16 (or fp32) there")
        return torch.float16
    raise InputError(f"unknown precision {precision!r}; use {', '.join(PRECISIONS)}")


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """A context running ``precision`` on ``device``: ``torch.autocast`` or, for full precision, nothing."""
    dtype = autocast_dtype(device, precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)

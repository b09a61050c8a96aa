"""tami.train.ema: resuming from an EMA state that does not fit is a checkpoint error, not an internal KeyError."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tami.errors import CheckpointError
from tami.train.ema import EMA


def test_state_round_trip_and_a_state_missing_parameters_is_a_checkpoint_error():
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.ones(3))
    ema = EMA([("a", a), ("b", b)], decay=0.9)
    with torch.no_grad():
        a.add_(1.0)
    ema.update()
    state = ema.state_dict()
    other = EMA([("a", nn.Parameter(torch.zeros(2))), ("b", nn.Parameter(torch.zeros(3)))], decay=0.9)
    other.load_state_dict(state)
    assert other.updates == 1 and torch.equal(other.shadow["a"], ema.shadow["a"])
    # (1 + 1) / (10 + 1) = 2/11 of the old shadow (0) kept, 9/11 of the new value (1) taken.
    torch.testing.assert_close(other.shadow["a"], torch.full((2,), 9 / 11))
    bigger = EMA([("a", a), ("b", b), ("c", nn.Parameter(torch.zeros(1)))], decay=0.9)
    with pytest.raises(CheckpointError, match="EMA state lacks c; resume with the model it was trained with"):
        bigger.load_state_dict(state)

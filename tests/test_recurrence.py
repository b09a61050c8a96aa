"""The training policy for recurrent clips: which frames write the ground truth, and its validation."""

import pytest
import torch

from tami.errors import UsageError
from tami.train.recurrence import RecurrencePolicy


def test_no_teacher_forcing_means_no_mask() -> None:
    assert RecurrencePolicy(0.0, 0).teacher_mask(2, 5) is None


def test_first_frames_always_write_the_ground_truth_and_the_rest_never_at_zero() -> None:
    mask = RecurrencePolicy(teacher_forcing=0.0, teacher_first=2).teacher_mask(3, 5)
    expected = torch.tensor([[True, True, False, False, False]] * 3)
    assert torch.equal(mask, expected)


def test_draws_are_per_frame_from_the_generator() -> None:
    policy = RecurrencePolicy(teacher_forcing=0.5, teacher_first=1)
    mask = policy.teacher_mask(2, 6, torch.Generator().manual_seed(3))
    draws = torch.Generator().manual_seed(3)
    expected = torch.stack([torch.rand(2, generator=draws) < 0.5 for _ in range(6)], 1)
    expected[:, 0] = True
    assert torch.equal(mask, expected)
    assert mask[:, 1:].any() and not mask[:, 1:].all()
    assert torch.equal(policy.teacher_mask(2, 6, torch.Generator().manual_seed(3)), mask)  # reproducible


def test_always_at_one() -> None:
    assert RecurrencePolicy(1.0).teacher_mask(2, 4).all()


@pytest.mark.parametrize(("options", "message"), [
    ({"teacher_forcing": 1.5}, "probability"),
    ({"teacher_first": -1}, "teacher_first"),
    ({"detach_every": 0}, "detach_every"),
])
def test_bad_settings_name_the_key(options, message) -> None:
    with pytest.raises(UsageError, match=message):
        RecurrencePolicy(**options)

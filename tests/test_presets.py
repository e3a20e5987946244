"""The demo's presets keep the promise: the shipped spatial transformer reads each one right."""

import pytest

from stn_core.controls import Controls, trained_ranges
from stn_lab.views.main_view import LESSONS, PRESETS, preset_model

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", list(PRESETS))
def test_the_shipped_st_cnn_reads_every_preset_right(shipped_lab, name):
    values, digit_class, regime = PRESETS[name]
    lab = shipped_lab
    key = preset_model(lab, regime)
    digit, label = lab.sample_digit(lab.first_sample_of(digit_class))
    assert label == digit_class
    frame = lab.frame(digit, Controls(**values), key)
    assert frame.st_label == digit_class, f"{name}: {key} read {frame.st_label}, probabilities {frame.st_probs}"


def test_there_is_at_most_one_lesson_and_it_leaves_the_trained_range(shipped_lab):
    assert len(LESSONS) <= 1
    for name, (values, _, regime) in LESSONS.items():
        assert "outside" in name
        key = preset_model(shipped_lab, regime)
        ranges = trained_ranges(shipped_lab.service.choice(key).regime)
        outside = [
            control
            for control, value in values.items()
            if control in ranges and not ranges[control][0] <= value <= ranges[control][1]
        ]
        assert outside, f"the lesson {name!r} stays inside what {key} was trained on"

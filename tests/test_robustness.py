"""The angle curve (stn_core.robustness) on the shipped RTS model and the shipped digits."""

import pytest
import torch
import torch.nn.functional as F

from stn_core import load
from stn_core.evaluate import error_rate
from stn_core.robustness import ANGLES, angle_curve, confusions_at
from tests.helpers import ROOT

RTS_CNN = ROOT / "pretrained" / "rts-cnn.safetensors"


def test_angle_curve_at_zero_is_the_error_on_the_digits_centred_on_the_canvas(sample_digits):
    images, labels = sample_digits
    model = load(RTS_CNN)
    curve = angle_curve(model, images, labels, angles=(0,))
    pad = (model.canvas_size - images.shape[-1]) // 2
    centred = F.pad(images, (pad, pad, pad, pad))
    assert abs(curve[0] - error_rate(model, centred, labels)) <= 0.1  # at most one digit of 1,000


def test_a_model_trained_on_plus_minus_45_degrees_fails_upside_down(sample_digits):
    images, labels = sample_digits
    curve = angle_curve(load(RTS_CNN), images, labels, angles=(0, 45, 180))
    assert list(curve) == [0, 45, 180]
    assert curve[0] < 3 and curve[180] > 10 * curve[0]


def test_confusions_count_the_misread_digits_at_an_angle(sample_digits):
    images, labels = sample_digits
    model = load(RTS_CNN)
    curve = angle_curve(model, images, labels, angles=(180,))
    pairs = confusions_at(model, images, labels, 180, top=100)
    assert all(true != read for true, read, _ in pairs)
    assert sum(count for _, _, count in pairs) == round(curve[180] * images.shape[0] / 100)
    assert len(ANGLES) == 25 and ANGLES[0] == -180 and ANGLES[-1] == 180


@pytest.mark.slow
def test_the_command_prints_each_angles_error_and_commonest_confusions(mnist_dir, capsys):
    from stn_core.robustness import main

    assert main([str(RTS_CNN), "--confusions", "0", "180", "--top", "2", "--data-dir", str(mnist_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("RTS · CNN (rts-cnn)") and lines[1] == "| angle | error % | true → read (digits) |"
    rows = {line.split(" | ")[0]: line for line in lines[3:]}
    assert set(rows) == {"| 0°", "| 180°"}
    upright_error, upside_down_error = (float(rows[key].split(" | ")[1]) for key in ("| 0°", "| 180°"))
    assert upright_error < 3 < 30 < upside_down_error and rows["| 180°"].count("→") == 2


def test_mean_zoom_is_the_windows_scale_and_needs_a_transformer():
    from stn_core.models import ModelConfig, build_model
    from stn_core.robustness import mean_zoom
    from stn_core.train import _start_zoomed_in

    images = torch.rand(6, 1, 60, 60)
    for transform in ("attention", "affine"):
        model = build_model(ModelConfig("st-cnn", 60, transform=transform, output_size=30)).eval()
        assert mean_zoom(model, images) == pytest.approx(1.0)  # the identity: the whole canvas
        _start_zoomed_in(model, 0.5)
        assert mean_zoom(model, images, batch_size=4) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="expected a model with an attention or affine spatial transformer, got transform None"):
        mean_zoom(build_model(ModelConfig("cnn", 60)).eval(), images)

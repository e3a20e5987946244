import re
from pathlib import Path

import pytest
import torch

from stn_core.checkpoints import read_card
from stn_core.geometry import make_transform
from stn_core.models import MODEL_NAMES, ModelConfig, STClassifier, build_model, count_parameters

KINDS = [
    {"model": "cnn", "canvas_size": 28},
    {"model": "fcn", "canvas_size": 42},
    {"model": "st-cnn", "canvas_size": 42, "transform": "affine"},
    {"model": "st-cnn", "canvas_size": 28, "transform": "projective"},
    {"model": "st-cnn", "canvas_size": 28, "transform": "tps"},
    {"model": "st-cnn", "canvas_size": 60, "transform": "attention", "output_size": 30},
    {"model": "st-fcn", "canvas_size": 28, "transform": "affine"},
]


def _name(kind):
    return "-".join(str(v) for v in kind.values())


@pytest.mark.parametrize("kind", KINDS, ids=_name)
def test_interface_images_in_logits_out(kind):
    model = build_model(kind)
    size = kind["canvas_size"]
    logits = model(torch.rand(5, 1, size, size))
    assert logits.shape == (5, 10) and torch.isfinite(logits).all()
    assert model.canvas_size == size
    assert build_model(model.config).config == model.config == ModelConfig.from_dict(model.config.to_dict())
    assert build_model(model.config.to_dict()).config == model.config
    with pytest.raises(ValueError, match=rf"\(N, 1, {size}, {size}\)"):
        model(torch.rand(5, 1, size + 1, size + 1))
    with pytest.raises(ValueError, match="expected images"):
        model(torch.rand(5, size, size))


@pytest.mark.parametrize("kind", [k for k in KINDS if k["model"].startswith("st-")], ids=_name)
def test_a_new_spatial_transformer_warps_by_the_identity(kind):
    torch.manual_seed(0)
    model = build_model(kind)
    size = kind["canvas_size"]
    images = torch.rand(3, 1, size, size)
    with torch.no_grad():
        details = model.forward_details(images)
    transform = make_transform(kind["transform"])
    assert torch.allclose(details.theta, transform.identity().expand(3, -1), atol=1e-6)
    if details.warped.shape[-1] == size:
        assert (details.warped - images).abs().max() < 1e-5
    else:  # a smaller output is the whole input, resampled
        assert abs(float(details.warped.mean() - images.mean())) < 0.02
    assert details.grid.shape == (3, model.spatial_transformer.output_size, model.spatial_transformer.output_size, 2)
    regressor = model.spatial_transformer.regressor
    assert torch.count_nonzero(regressor.weight) == 0
    assert torch.allclose(regressor.bias, transform.identity())


def test_padding_outside_the_input_is_background():
    # Push theta to zoom out: what the sampler pads must reach the classifier as blank canvas.
    model = build_model({"model": "st-cnn", "canvas_size": 28, "transform": "attention"})
    with torch.no_grad():
        model.spatial_transformer.regressor.bias.copy_(torch.tensor([2.0, 0.0, 0.0]))
    warped = model.forward_details(torch.ones(1, 1, 28, 28)).warped
    assert warped[0, 0, 0, 0] == 0 and warped[0, 0, 14, 14] == 1


def test_gradients_reach_the_localisation_net():
    model = build_model({"model": "st-cnn", "canvas_size": 28, "transform": "affine"})
    model(torch.rand(4, 1, 28, 28)).logsumexp(1).sum().backward()
    assert model.spatial_transformer.regressor.weight.grad.abs().sum() > 0


def test_config_fills_in_defaults_and_names_the_model():
    config = ModelConfig("st-cnn", 42, transform="tps")
    assert (config.output_size, config.tps_grid_size, config.hidden, config.batch_norm) == (42, 4, 0, False)
    assert config.to_dict() == {
        "model": "st-cnn",
        "canvas_size": 42,
        "hidden": 0,
        "batch_norm": False,
        "transform": "tps",
        "output_size": 42,
        "tps_grid_size": 4,
    }
    assert ModelConfig("st-cnn", 42).transform == "affine"
    assert ModelConfig("fcn", 28).to_dict() == {"model": "fcn", "canvas_size": 28}
    assert [ModelConfig.from_dict(kind).label for kind in KINDS] == [
        "CNN",
        "FCN",
        "ST-CNN Aff",
        "ST-CNN Proj",
        "ST-CNN TPS",
        "ST-CNN Att",
        "ST-FCN Aff",
    ]


def test_parameter_counts_are_small():
    for kind in KINDS:
        assert count_parameters(build_model(kind)) < 400_000  # every model must fit the 40 MB of weights, each file under 10 MB


def test_bad_architectures():
    with pytest.raises(ValueError, match="unknown model"):
        build_model({"model": "resnet", "canvas_size": 28})
    with pytest.raises(ValueError, match="unknown transform"):
        build_model({"model": "st-cnn", "canvas_size": 28, "transform": "spiral"})
    with pytest.raises(ValueError, match="canvas_size"):
        build_model({"model": "cnn", "canvas_size": 2})
    with pytest.raises(ValueError, match="canvas_size: missing field"):
        build_model({"model": "cnn"})
    with pytest.raises(ValueError, match="canvas_size must be an integer, got '28'"):
        build_model({"model": "cnn", "canvas_size": "28"})
    with pytest.raises(ValueError, match="batch_norm must be true or false"):
        ModelConfig("cnn", 28, batch_norm="yes")
    with pytest.raises(ValueError, match="colour: unknown field"):
        build_model({"model": "cnn", "canvas_size": 28, "colour": "red"})
    with pytest.raises(ValueError, match="transform: only spatial-transformer models take it"):
        ModelConfig("cnn", 28, transform="affine")
    with pytest.raises(ValueError, match="batch_norm: only CNN classifiers"):
        ModelConfig("st-fcn", 28, batch_norm=True)
    with pytest.raises(ValueError, match="tps_grid_size: only the tps transform"):
        ModelConfig("st-cnn", 28, transform="affine", tps_grid_size=3)
    assert set(MODEL_NAMES) == {"cnn", "fcn", "st-cnn", "st-fcn"}
    assert isinstance(build_model(KINDS[2]), STClassifier)


def test_the_readmes_library_example_runs(capsys):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    [example] = [block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "import stn_core" in block]
    shipped = Path(__file__).resolve().parents[1] / "pretrained" / "rts-st-cnn-affine.safetensors"
    exec(example.replace("runs/rts-st-cnn-affine/rts-st-cnn-affine.safetensors", str(shipped)), {})
    printed = capsys.readouterr().out
    recorded = read_card(shipped).test_error["RTS"]  # the example prints the card's error
    assert "torch.Size([8, 10]) torch.Size([8, 6]) torch.Size([8, 42, 42, 2])" in printed and f"'RTS': {recorded}" in printed

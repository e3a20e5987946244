"""stn_core.fast: inference copies that keep the geometry exact and the answers close."""

from pathlib import Path

import pytest
import torch

import stn_core
from stn_core.distortions import REGIMES, distort, draw_distortion
from stn_core.fast import FastModel, MaxPool2x2, bfloat16_is_native, fast_copy
from stn_core.models import ModelConfig, build_model

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"


def _batch_norm_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(ModelConfig("st-cnn", canvas_size=42, transform="affine", batch_norm=True))
    for module in model.modules():  # running statistics away from 0 / 1, so that folding them matters
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def test_float32_copy_is_the_same_model_rewritten():
    model = _batch_norm_model()
    fast = fast_copy(model, dtype=torch.float32)
    x = torch.rand(8, 1, 42, 42)
    with torch.inference_mode():
        exact = model.forward_details(x)
    quick = fast.forward_details(x)
    assert torch.allclose(exact.theta, quick.theta, atol=1e-5)
    assert torch.allclose(exact.warped, quick.warped, atol=1e-5)
    assert torch.allclose(exact.logits, quick.logits, atol=1e-4)
    # Batch norm folded into the convolutions, ReLU moved after pooling, pooling strided.
    kinds = [type(m).__name__ for m in fast.model.classifier.features]
    assert "BatchNorm2d" not in kinds and "MaxPool2d" not in kinds and kinds.index("MaxPool2x2") < kinds.index("ReLU")


def test_the_original_model_is_left_as_it_was():
    model = _batch_norm_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast_copy(model, dtype=torch.bfloat16)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_subnormal_weights_are_zero_in_the_copy_and_no_answer_changes():
    model = _batch_norm_model()
    with torch.no_grad():  # as weight decay leaves dead units: tiny, but not zero
        weight = model.spatial_transformer.localisation[1].weight
        weight[:, ::2] = 1e-39
    fast = fast_copy(model, dtype=torch.float32)
    copied = fast.model.spatial_transformer.localisation[1].weight
    assert float(weight[0, 0]) != 0.0 and bool((copied[:, ::2] == 0).all())
    assert all(
        not bool(((t.abs() < torch.finfo(t.dtype).tiny) & (t != 0)).any())
        for t in (*fast.model.parameters(), *fast.model.buffers())
        if t.is_floating_point()
    )
    x = torch.rand(8, 1, 42, 42)
    with torch.inference_mode():
        exact = model.forward_details(x)
    quick = fast.forward_details(x)
    assert torch.allclose(exact.theta, quick.theta, atol=1e-5) and torch.equal(exact.logits.argmax(1), quick.logits.argmax(1))
    assert "1.2e-38" in stn_core.fast.__doc__  # the module says why


def test_bfloat16_copy_of_the_shipped_pair_keeps_theta_and_nearly_every_answer(sample_digits):
    images, labels = sample_digits
    generator = torch.Generator().manual_seed(0)
    canvases = distort(images, draw_distortion("RTS", images.shape[0], generator, pool_size=1))
    for name in ("rts-st-cnn-affine", "rts-cnn"):
        model = stn_core.load(PRETRAINED / f"{name}.safetensors")
        fast = fast_copy(model, dtype=torch.bfloat16)
        with torch.inference_mode():
            exact = model(canvases).softmax(1)
            if name.startswith("rts-st"):
                assert torch.allclose(model.forward_details(canvases).theta, fast.forward_details(canvases).theta, atol=1e-5)
        quick = fast(canvases).softmax(1)
        assert (exact - quick).abs().max() < 0.1
        assert (exact.argmax(1) != quick.argmax(1)).sum() <= 3  # of 1,000
        assert (quick.argmax(1) != labels).float().mean() <= (exact.argmax(1) != labels).float().mean() + 0.003


def test_auto_picks_bfloat16_only_where_it_is_native():
    fast = fast_copy(_batch_norm_model())
    assert fast.dtype == (torch.bfloat16 if bfloat16_is_native("cpu") else torch.float32)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="dtype must be torch.float32 or torch.bfloat16, got torch.float16"):
        FastModel(_batch_norm_model(), torch.float16)
    cnn = fast_copy(build_model(ModelConfig("cnn", canvas_size=REGIMES["R"].canvas_size)).eval(), dtype=torch.float32)
    with pytest.raises(TypeError, match="needs a spatial-transformer model, got CNN"):
        cnn.forward_details(torch.rand(1, 1, 28, 28))


@pytest.mark.parametrize("size", [(34, 34), (11, 11), (15, 8)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_strided_pooling_gives_exactly_maxpool2d(size, dtype):
    x = torch.randn(3, 5, *size).to(dtype)
    for layout in (torch.contiguous_format, torch.channels_last):
        x = x.contiguous(memory_format=layout)
        assert torch.equal(MaxPool2x2()(x), torch.nn.MaxPool2d(2)(x))


def test_only_plain_2x2_pooling_is_replaced():
    model = torch.nn.Sequential(torch.nn.MaxPool2d(2), torch.nn.MaxPool2d(3), torch.nn.MaxPool2d(2, ceil_mode=True))
    kinds = [type(m).__name__ for m in FastModel(model, torch.float32).model]
    assert kinds == ["MaxPool2x2", "MaxPool2d", "MaxPool2d"]

"""Inference at many frames a second: the same model, laid out and rounded for speed.

A live view runs the same small models on a hundred users' frames every tick; on a CPU the
classifiers' convolutions dominate that work. :func:`fast_copy` returns an inference-only
copy of a model that

* folds each batch normalisation into the convolution before it, pools before the ReLU
  rather than after, and pools 2x2 as the maximum of four strided views (:class:`MaxPool2x2`)
  (all three exact rewrites),
* keeps its weights and inputs channels-last, the layout oneDNN's convolutions are fastest
  in (the same numbers in a different order: a float32 result changes by rounding only),
* sets its subnormal weights (below 1.2e-38 in magnitude, where weight decay leaves dead
  units' weights) to zero: each multiply by one takes the CPU's slow path. The full-range
  ST-CNN's localisation net had 6,060 of them (475 in a convolution), and a batch of 100
  frames took 587 ms instead of 45 (one thread, 2026-12-02); a product of one with a
  digit's pixels is below 1e-37, so no answer changes, and
* runs the *classifier* (the CNN reading the warped output, or a whole baseline CNN) in
  bfloat16 where the hardware computes bfloat16 natively (CPUs with AVX512-BF16 or AMX,
  CUDA GPUs); elsewhere it stays float32, since emulated bfloat16 is slower than float32.

The localisation net, the grid generator and the sampler always stay float32, so ``theta``,
the grid and the warped output are the float32 model's to rounding (1e-5): only the class
probabilities move. Measured on the RTS pair shipped then (before its 2026-12-04 sketch
fine-tune) over its 10,000 fixed test digits
(``python -m benchmarks.bench_fast``, 2 CPU cores with AMX, 2026-12-02): ST-CNN error 0.61%
both ways, CNN 1.44% -> 1.43% (3 answers of 10,000 differ), probabilities at most 0.03 apart,
θ at most 3e-7; both models on a batch of 100: 952 -> 3,325 frames/s (3.5x); on one frame
292 -> 470 frames/s.

>>> from stn_core.models import ModelConfig, build_model
>>> model = build_model(ModelConfig("st-cnn", canvas_size=42, transform="affine")).eval()
>>> fast = fast_copy(model, dtype=torch.float32)
>>> x = torch.rand(4, 1, 42, 42)
>>> exact, quick = model.forward_details(x), fast.forward_details(x)
>>> bool(torch.allclose(exact.theta, quick.theta, atol=1e-5)), quick.logits.dtype
(True, torch.float32)
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .models import STClassifier, STOutput

__all__ = ["FastModel", "bfloat16_is_native", "fast_copy"]


def bfloat16_is_native(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 in hardware (CUDA; CPUs with AVX512-BF16 or AMX)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        return False
    try:  # Linux names the instruction sets; elsewhere assume emulation and stay float32
        with open("/proc/cpuinfo") as info:
            flags = next((line.split() for line in info if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class MaxPool2x2(nn.Module):
    """``nn.MaxPool2d(2)`` as the maximum of four strided views: the same values exactly
    (a maximum rounds nothing), and faster on channels-last CPU tensors, where PyTorch's
    pooling kernel is slow (``python -m benchmarks.bench_fast`` times both: 1.63 against
    1.05 ms for 100 x 32 x 34 x 34 bfloat16, 2 CPU cores, 2026-12-02).
    A trailing odd row or column is dropped, as ``MaxPool2d`` drops it."""

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
        top = torch.maximum(x[..., 0:h:2, 0:w:2], x[..., 0:h:2, 1:w:2])
        return torch.maximum(top, torch.maximum(x[..., 1:h:2, 0:w:2], x[..., 1:h:2, 1:w:2]))


def _is_plain_2x2_pool(layer: nn.Module) -> bool:
    def pair(v):
        return tuple(v) if isinstance(v, (tuple, list)) else (v, v)

    return (
        type(layer) is nn.MaxPool2d
        and pair(layer.kernel_size) == (2, 2)
        and pair(layer.stride) == (2, 2)
        and pair(layer.padding) == (0, 0)
        and pair(layer.dilation) == (1, 1)
        and not layer.ceil_mode
        and not layer.return_indices
    )


def _fused(module: nn.Module) -> nn.Module:
    """``module`` with, in every ``nn.Sequential``, each convolution followed by batch
    normalisation folded into one convolution (exact in eval mode), and each ReLU followed
    by max-pooling swapped with it (max and ReLU commute: the ReLU then runs on a quarter
    of the values)."""
    for child in module.children():
        _fused(child)
    if isinstance(module, nn.Sequential):
        layers = list(module)
        i = 0
        while i < len(layers) - 1:
            first, second = layers[i], layers[i + 1]
            if isinstance(first, nn.Conv2d) and isinstance(second, nn.BatchNorm2d):
                layers[i : i + 2] = [fuse_conv_bn_eval(first, second)]
                continue
            if isinstance(first, nn.ReLU) and isinstance(second, nn.MaxPool2d):
                layers[i], layers[i + 1] = second, first
            i += 1
        layers = [MaxPool2x2() if _is_plain_2x2_pool(layer) else layer for layer in layers]
        for name in list(module._modules):
            del module._modules[name]
        for index, layer in enumerate(layers):
            module.add_module(str(index), layer)
    return module


class FastModel(nn.Module):
    """An inference-only copy of a model (see the module's docstring); ``forward`` gives
    float32 logits ``(N, 10)``, and ``forward_details`` an
    :class:`~stn_core.models.STOutput` for a spatial-transformer model. Inputs as the
    model's: ``(N, 1, S, S)`` floats in [0, 1]."""

    def __init__(self, model: nn.Module, dtype: torch.dtype):
        super().__init__()
        if dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"dtype must be torch.float32 or torch.bfloat16, got {dtype}")
        self.model = _fused(copy.deepcopy(model).eval()).to(memory_format=torch.channels_last)
        with torch.no_grad():  # after fusing, which can make subnormals of its own
            for tensor in (*self.model.parameters(), *self.model.buffers()):
                if tensor.is_floating_point():
                    tensor[tensor.abs() < torch.finfo(tensor.dtype).tiny] = 0.0
        self.dtype = dtype
        self.config = getattr(model, "config", None)

    def _classify(self, classifier: nn.Module, x: Tensor) -> Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16):
            return classifier(x).float()

    @torch.inference_mode()
    def forward_details(self, x: Tensor) -> STOutput:
        if not isinstance(self.model, STClassifier):
            raise TypeError(f"forward_details needs a spatial-transformer model, got {type(self.model).__name__}")
        # float32 geometry: theta, the grid and the warped output are the exact model's.
        warped, theta, grid = self.model.spatial_transformer(x.contiguous(memory_format=torch.channels_last))
        return STOutput(self._classify(self.model.classifier, warped), warped, theta, grid)

    @torch.inference_mode()
    def forward(self, x: Tensor) -> Tensor:
        if isinstance(self.model, STClassifier):
            return self.forward_details(x).logits
        return self._classify(self.model, x)


def fast_copy(model: nn.Module, dtype: torch.dtype | str = "auto") -> FastModel:
    """An inference-only :class:`FastModel` copy of ``model`` (which is left as it is).

    Args:
        model: a model of :mod:`stn_core.models`, on the device it will run on.
        dtype: the classifier's compute type: ``"auto"`` (bfloat16 where it is native on
            the model's device, else float32), ``torch.bfloat16`` or ``torch.float32``.
    """
    if dtype == "auto":
        device = next(model.parameters()).device
        dtype = torch.bfloat16 if bfloat16_is_native(device) else torch.float32
    return FastModel(model, dtype)

"""The inference service behind the app: owns the shipped models and runs user inputs
through distortion -> ST-CNN and CNN, one at a time or as a batch.

* Models load once, at start-up, from ``pretrained/`` or ``$STN_MODEL_DIR`` (each
  ``NAME.safetensors`` with its card ``NAME.json``); a file whose SHA-256 does not match its card is refused and logged.
* The device is ``$STN_DEVICE`` if set, else ``cuda`` when available, else ``cpu``; models
  move there once, and every forward pass runs under ``torch.inference_mode()``.
* On a Hugging Face ZeroGPU Space (the ``spaces`` package importable) a GPU is lent per
  call of a function decorated with ``@spaces.GPU``, and a call waits for one: the live
  slider path stays on the CPU, and the heavy batched passes (invariance sweep, batch view)
  go through ``spaces.GPU``. Without ``spaces`` nothing changes.
* The app's controls (:class:`Controls`) are turned into the library's own
  :class:`~stn_core.distortions.Distortion`, so a slider drives exactly the functions the
  training regimes use.
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from stn_core.checkpoints import CheckpointError, load
from stn_core.controls import Controls, distortion_batch
from stn_core.distortions import REGIMES, distort, draw_distortion
from stn_core.fast import FastModel, fast_copy
from stn_core.mnist import load_sample

__all__ = ["InferenceService", "ModelChoice", "Result", "PRETRAINED_DIR"]

log = logging.getLogger(__name__)
# The model the page opens with: a setting, so that shipping a better default is one line.
DEFAULT_MODEL = "rts-st-cnn-affine"
PRETRAINED_DIR = Path(os.environ.get("STN_MODEL_DIR") or Path(__file__).resolve().parent.parent / "pretrained")


@dataclass(frozen=True)
class ModelChoice:
    """An ST model and the plain CNN trained on the same regime (``cnn`` may be ``None``)."""

    key: str  # the ST model's slug, e.g. "rts-st-cnn-affine"
    title: str  # for people: "RTS · ST-CNN Aff"
    regime: str
    transform: str
    st: torch.nn.Module
    cnn: torch.nn.Module | None
    # The same two models as stn_core.fast copies, for the live path's many frames a tick.
    fast_st: FastModel
    fast_cnn: FastModel | None

    @property
    def canvas_size(self) -> int:
        return self.st.canvas_size


@dataclass
class Result:
    """One input through one :class:`ModelChoice` (numpy arrays, on the CPU)."""

    canvas: np.ndarray  # (S, S): the distorted input U
    theta: torch.Tensor  # (P,)
    warped: np.ndarray  # (out, out): V, what the classifier sees
    st_probs: np.ndarray  # (10,)
    cnn_probs: np.ndarray | None  # (10,), None without a CNN baseline


def _pick_device(zero_gpu) -> torch.device:
    wanted = os.environ.get("STN_DEVICE")
    if wanted:
        return torch.device(wanted)
    if zero_gpu is not None:  # CUDA only exists inside @spaces.GPU calls
        return torch.device("cpu")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _zero_gpu_decorator():
    """``spaces.GPU`` where the ``spaces`` package exists (Hugging Face Spaces), else ``None``."""
    try:
        import spaces
    except ImportError:
        return None
    return spaces.GPU


class InferenceService:
    """Loads every shipped model once and answers the app's requests.

    Args:
        model_dir: folder of ``.safetensors`` + ``.json`` pairs.
        device: overrides ``$STN_DEVICE`` / auto-detection.
    """

    def __init__(self, model_dir=PRETRAINED_DIR, device=None):
        zero_gpu = _zero_gpu_decorator()
        self.device = torch.device(device) if device else _pick_device(zero_gpu)
        # The heavy batched passes: on ZeroGPU, each call borrows the GPU.
        self.run_heavy = zero_gpu(self._run_on_lent_gpu) if zero_gpu is not None else self.run
        models = {}
        # Several-digit models (cards with a task) are the "Several digits" view's, by slug.
        self.task_models: dict[str, torch.nn.Module] = {}
        for weights in sorted(Path(model_dir).glob("*.safetensors")):
            try:
                model = load(weights, device=self.device)
            except CheckpointError as error:
                log.error("not serving %s: %s", weights.name, error)
                continue
            (models if model.card.task is None else self.task_models)[weights.stem] = model
        baselines = {m.card.regime: m for m in models.values() if m.config.model == "cnn"}
        self.choices: dict[str, ModelChoice] = {}
        for name, model in models.items():
            if model.config.model != "st-cnn":
                continue
            regime, transform = model.card.regime, model.config.transform
            title = f"{regime} · {model.config.label}"
            cnn = baselines.get(regime)
            fast_cnn = fast_copy(cnn) if cnn is not None else None
            self.choices[name] = ModelChoice(name, title, regime, transform, model, cnn, fast_copy(model), fast_cnn)
        images, labels, _ = load_sample()
        self.sample_images = images.unsqueeze(1).float().div(255.0)  # (1000, 1, 28, 28)
        self.sample_labels = labels
        self._pool = self.sample_images.to(self.device)

    def choice(self, key: str) -> ModelChoice:
        if key not in self.choices:
            raise ValueError(f"unknown model {key!r}; available: {', '.join(self.choices) or 'none'}")
        return self.choices[key]

    def default_key(self) -> str | None:
        """:data:`DEFAULT_MODEL` (or ``$STN_DEFAULT_MODEL``) when shipped, else the first model."""
        preferred = os.environ.get("STN_DEFAULT_MODEL") or DEFAULT_MODEL
        return preferred if preferred in self.choices else next(iter(self.choices), None)

    def distort(self, digits: torch.Tensor, controls: list[Controls], canvas_size: int) -> torch.Tensor:
        """``(N, 1, 28, 28)`` digits, one :class:`Controls` each -> ``(N, 1, S, S)`` canvases."""
        batch = distortion_batch([c.checked() for c in controls], canvas_size, self._pool.shape[0])
        return distort(digits.to(self.device), batch, pool=self._pool)

    @torch.inference_mode()
    def run(self, canvases: torch.Tensor, key: str, device: torch.device | None = None, fast: bool = False) -> list[Result]:
        """Both models of ``key`` on a batch of ``(N, 1, S, S)`` canvases, on the service's
        device, or on copies of the models on ``device``. ``fast``: their
        :mod:`stn_core.fast` copies (the live path: same θ, grid and warped output,
        probabilities within 0.03 on the RTS test set)."""
        choice = self.choice(key)
        st, cnn = (choice.fast_st, choice.fast_cnn) if fast else (choice.st, choice.cnn)
        if device is not None and torch.device(device) != self.device:
            # Copies: the live path keeps using the originals meanwhile (~1 MB each).
            st = copy.deepcopy(st).to(device)
            cnn = copy.deepcopy(cnn).to(device) if cnn is not None else None
        canvases = canvases.to(device or self.device)
        details = st.forward_details(canvases)
        st_probs = details.logits.softmax(1).cpu().numpy()
        cnn_probs = cnn(canvases).softmax(1).cpu().numpy() if cnn is not None else None
        canvases_np = canvases[:, 0].cpu().numpy()
        warped_np = details.warped[:, 0].cpu().numpy()
        theta = details.theta.cpu()
        return [
            Result(canvases_np[i], theta[i], warped_np[i], st_probs[i], None if cnn_probs is None else cnn_probs[i])
            for i in range(canvases.shape[0])
        ]

    def _run_on_lent_gpu(self, canvases: torch.Tensor, key: str) -> list[Result]:
        """:meth:`run` inside a ``@spaces.GPU`` call: on the lent GPU when there is one."""
        return self.run(canvases, key, torch.device("cuda") if torch.cuda.is_available() else None)

    def predict(self, digit: np.ndarray, controls: Controls, key: str, fast: bool = False) -> Result:
        """One ``(28, 28)`` digit in [0, 1], distorted by ``controls``, through model ``key``
        (``fast``: see :meth:`run`)."""
        return self.predict_many([digit], [controls], key, fast)[0]

    def predict_many(self, digits: list[np.ndarray], controls: list[Controls], key: str, fast: bool = False) -> list[Result]:
        """Many digits through model ``key`` in one forward pass (concurrent slider events
        become one batch). The same inputs give the same results as one by one. ``fast``:
        see :meth:`run`."""
        choice = self.choice(key)
        groups: dict[tuple, list[int]] = {}
        for index, settings in enumerate(controls):  # parts present or absent batch separately
            groups.setdefault((bool(settings.perspective), bool(settings.elastic), settings.clutter), []).append(index)
        results: list[Result | None] = [None] * len(digits)
        for members in groups.values():
            batch = torch.from_numpy(np.stack([np.asarray(digits[i], dtype=np.float32).reshape(1, 28, 28) for i in members]))
            canvases = self.distort(batch, [controls[i] for i in members], choice.canvas_size)
            for index, result in zip(members, self.run(canvases, key, fast=fast)):
                results[index] = result
        return results

    def sweep(self, digit: np.ndarray, label: int, key: str, controls: Controls, name: str, values) -> dict:
        """Probability of ``label`` as control ``name`` runs over ``values``, one batched pass.

        Returns:
            ``{"values": [...], "st": [...], "cnn": [...] or None}``.
        """
        choice = self.choice(key)
        settings = [replace(controls, **{name: float(v)}) for v in values]
        digits = torch.as_tensor(np.asarray(digit, dtype=np.float32)).reshape(1, 1, 28, 28).expand(len(settings), -1, -1, -1)
        results = self.run_heavy(self.distort(digits, settings, choice.canvas_size), key)
        cnn = None if choice.cnn is None else [float(r.cnn_probs[label]) for r in results]
        return {"values": [float(v) for v in values], "st": [float(r.st_probs[label]) for r in results], "cnn": cnn}

    def batch(self, regime: str, key: str, seed: int, count: int = 16):
        """``count`` sample digits distorted by random draws of ``regime``, through model ``key``.

        Returns:
            ``(results, labels)``.
        """
        choice = self.choice(key)
        if REGIMES[regime].canvas_size != choice.canvas_size:
            raise ValueError(
                f"regime {regime} uses a {REGIMES[regime].canvas_size}px canvas; model {key} reads {choice.canvas_size}px"
            )
        generator = torch.Generator().manual_seed(seed)
        index = torch.randperm(self.sample_images.shape[0], generator=generator)[:count]
        distortion = draw_distortion(regime, count, generator, pool_size=self._pool.shape[0])
        canvases = distort(self.sample_images[index].to(self.device), distortion, pool=self._pool)
        return self.run_heavy(canvases, key), self.sample_labels[index].tolist()

"""STN Lab's spatial-transformer library (Jaderberg et al., NIPS 2015), usable on its own.

Modules, one idea each: :mod:`~stn_core.geometry` (grid generator and sampler; the one
coordinate convention), :mod:`~stn_core.models` (the models and their
:class:`~stn_core.models.ModelConfig`), :mod:`~stn_core.mnist` (data, and the 1,000 test
digits that ship with the package), :mod:`~stn_core.distortions` (the regimes, as data),
:mod:`~stn_core.controls` (a distortion as nine named controls), :mod:`~stn_core.preprocess`
(any image -> an MNIST-like digit), :mod:`~stn_core.train`, :mod:`~stn_core.timelapse`
(what training records for a time-lapse), :mod:`~stn_core.evaluate`,
:mod:`~stn_core.cards` (the model card type), :mod:`~stn_core.checkpoints` (weights
and cards on disk), :mod:`~stn_core.fast` (inference copies for many frames a second) and
:mod:`~stn_core.multi` (several digits at once: tasks, data, parallel and recurrent
spatial transformers).
"""

from .cards import ModelCard
from .checkpoints import load
from .models import ModelConfig, build_model

__version__ = "0.1.0"
__all__ = ["ModelCard", "ModelConfig", "build_model", "load"]

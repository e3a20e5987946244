"""STN Lab's spatial-transformer library (Jaderberg et al., NIPS 2015).

Modules, one idea each: :mod:`~stn_core.geometry` (grid generator and sampler; the one
coordinate convention), :mod:`~stn_core.models`, :mod:`~stn_core.mnist` (data),
:mod:`~stn_core.distortions`, :mod:`~stn_core.train`, :mod:`~stn_core.evaluate` and
:mod:`~stn_core.checkpoints` (shipped weights and model cards).
"""

from .checkpoints import load
from .models import build_model

__version__ = "0.1.0"
__all__ = ["build_model", "load"]

"""EM-FT and EM-RL training (Python API; the CLI is ``em-eval train``).

>>> from em_eval.training import load_recipe, train
>>> result = train(load_recipe("em_ft", ["max_steps=2"]))

Names load lazily, so importing the package (or its config) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "train": "em_eval.training.run.loop",
    "TrainResult": "em_eval.training.run.loop",
    "TrainConfig": "em_eval.training.setup.config",
    "EmFtConfig": "em_eval.training.setup.config",
    "EmRlConfig": "em_eval.training.setup.config",
    "TrainingConfigError": "em_eval.training.setup.config",
    "load_recipe": "em_eval.training.setup.config",
    "config_from_dict": "em_eval.training.setup.config",
    "heldout_entropy": "em_eval.training.run.heldout",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'em_eval.training' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)

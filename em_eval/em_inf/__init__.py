"""EM-INF and adaptive temperature: pure ``[batch, vocab]`` tensor functions (``core``) and the
``em_*`` settings both backends share (``settings``)."""

from em_eval.em_inf.core import adaptive_temperature, entropy, minimize_entropy
from em_eval.em_inf.settings import EmSettings

__all__ = ["EmSettings", "adaptive_temperature", "entropy", "minimize_entropy"]

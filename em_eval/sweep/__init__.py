"""Checkpoint sweeps: every checkpoint of a training run through lm-eval, then accuracy, entropy,
length and transitional-word rate against step, the entropy-performance law and a collapse alarm."""

from em_eval.sweep.run import SweepResult, run_sweep

__all__ = ["SweepResult", "run_sweep"]

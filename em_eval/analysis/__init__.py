"""Analyses over lm-eval output folders (``--log_samples``): pass@k curves, calibration of the
telemetry's confidence signals, confidence-filtered and -weighted voting, semantic entropy.

Python API: :func:`~em_eval.analysis.samples.load_sample_runs` reads runs response by response;
:mod:`~em_eval.analysis.report` turns them into tables and plots (the ``em-eval`` subcommands
``passk``, ``calibration``, ``voting`` and ``semantic-entropy`` call it); the statistics are pure
functions in :mod:`~em_eval.analysis.passk`, :mod:`~em_eval.analysis.calibration` and
:mod:`~em_eval.analysis.voting`.
"""

from em_eval.analysis.calibration import auroc, expected_calibration_error, reliability
from em_eval.analysis.confidence import SIGNALS, signal_names
from em_eval.analysis.passk import pass_at_k_curve
from em_eval.analysis.samples import ProblemSamples, SampleRun, load_sample_runs
from em_eval.analysis.semantic import semantic_entropy
from em_eval.analysis.voting import budget_majority, filtered_correct, weighted_correct

__all__ = [
    "SIGNALS",
    "ProblemSamples",
    "SampleRun",
    "auroc",
    "budget_majority",
    "expected_calibration_error",
    "filtered_correct",
    "load_sample_runs",
    "pass_at_k_curve",
    "reliability",
    "semantic_entropy",
    "signal_names",
    "weighted_correct",
]

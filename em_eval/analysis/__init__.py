"""Analyses over lm-eval output folders (``--log_samples``): pass@k curves, calibration of the
telemetry's confidence signals, confidence-filtered and -weighted voting, semantic entropy.

Python API: :func:`~em_eval.analysis.samples.load_sample_runs` reads runs response by response;
:mod:`~em_eval.analysis.report` turns them into tables and plots (the ``em-eval`` subcommands
``passk``, ``calibration``, ``voting`` and ``semantic-entropy`` call it); the statistics are pure
functions in :mod:`~em_eval.analysis.passk`, :mod:`~em_eval.analysis.calibration` and
:mod:`~em_eval.analysis.voting`.
"""

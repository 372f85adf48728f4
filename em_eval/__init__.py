"""em-eval: entropy-minimization methods (EM-INF, EM-FT, EM-RL) for lm-evaluation-harness.

Importing it does nothing else: :func:`em_eval.plugin.activate` registers em-eval with lm-eval.
"""

__version__ = "0.1.0"

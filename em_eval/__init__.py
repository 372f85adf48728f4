"""em-eval: entropy-minimization methods (EM-INF, EM-FT, EM-RL) for lm-evaluation-harness.

Kept import-free on purpose: the startup hook imports this package in every interpreter.
"""

__version__ = "0.1.0"

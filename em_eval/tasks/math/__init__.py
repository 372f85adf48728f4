"""MATH-500, AMC, AIME, Minerva, OlympiadBench: the lm-eval adapter (``task``) and the grader
(``grade`` over extract, normalize, numeric, symbolic and the sympy worker)."""

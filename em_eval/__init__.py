"""em-eval: entropy-minimization methods (EM-INF, EM-FT, EM-RL) for lm-evaluation-harness.

``import em_eval`` registers em-eval's models and tasks with lm-eval (now, or when lm-eval is
imported), so ``lm_eval.simple_evaluate(model="em_inf", tasks=["em_smoke"])`` works; it imports
nothing heavy. The startup hook (``em_eval_startup.pth``) imports this package in every
interpreter but registers only in lm-eval's own CLI and leaves nothing behind elsewhere.
"""

import sys as _sys

__version__ = "0.1.0"

if not getattr(_sys, "_em_eval_site_import", False):  # an explicit import, not the startup hook
    from em_eval import _startup as _hook

    _hook.install(force=True)
    if "lm_eval" in _sys.modules:  # lm-eval came first: register now (its imports are paid already)
        from em_eval import plugin as _plugin

        _plugin.activate()

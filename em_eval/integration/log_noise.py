"""Target: two warnings of lm-eval, matched by their text, that a user cannot act on here.

- "Custom kwargs can be passed to --metadata" (``lm_eval.api.task``) is dropped for ``em_`` tasks:
  every task with a Python loader gets it, whether or not it takes any.
- "Ensure 'do_sample=True' for non-greedy decoding" (``lm_eval.evaluator``) is dropped when
  ``--gen_kwargs`` already sets ``do_sample``.

lm-eval has no switch for them, so :func:`install` adds a logging filter to those two loggers.
"""

from __future__ import annotations

import logging

OUR_PREFIX = "em_"
FILTERED_LOGGERS = ("lm_eval.api.task", "lm_eval.evaluator")
CUSTOM_KWARGS = "Custom kwargs can be passed to `--metadata`"
ENSURE_SAMPLE = "Ensure 'do_sample=True'"


def is_noise(record: logging.LogRecord) -> bool:
    """Whether ``record`` is one of the two lm-eval warnings a user cannot act on here."""
    message = record.getMessage()
    if CUSTOM_KWARGS in message:
        return message.startswith(OUR_PREFIX)
    if ENSURE_SAMPLE in message:
        gen_kwargs = record.args  # logging unpacks a lone mapping argument
        return isinstance(gen_kwargs, dict) and "do_sample" in gen_kwargs
    return False


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not is_noise(record)


def install() -> None:
    """Filter the two warnings (idempotent)."""
    for name in FILTERED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise())

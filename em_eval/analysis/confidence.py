"""The confidence signals of a response, read from its telemetry record (or its problem's
answers), oriented so that higher means more confident.

``probability`` maps a signal to [0, 1] where it has a reading as one (for the calibration
error): ``exp(-mean entropy)`` for the entropy signals, the share of samples that agree for
``agreement``. Self-certainty and DeepConf's confidences have none (AUROC only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from em_eval.analysis.samples import ProblemSamples
from em_eval.records import CONF_FIELDS


@dataclass(frozen=True)
class Signal:
    name: str
    description: str
    read: Callable[[ProblemSamples, int], float | None]
    probability: Callable[[float], float] | None = None

    def value(self, problem: ProblemSamples, i: int) -> float | None:
        """Response ``i``'s value, None where its run did not record it."""
        value = self.read(problem, i)
        return None if value is None or math.isnan(value) else float(value)

    def weight(self, value: float) -> float:
        """A non-negative vote weight: the probability where defined, else the value (rounding can
        put a self-certainty of a near-uniform distribution a hair below 0)."""
        return self.probability(value) if self.probability else max(value, 0.0)


def _field(*path: Any, sign: float = 1.0) -> Callable[[ProblemSamples, int], float | None]:
    def read(problem: ProblemSamples, i: int) -> float | None:
        value: Any = problem.telemetry[i]
        for key in path:
            if not isinstance(value, (dict, list)) or (isinstance(value, dict) and key not in value):
                return None
            value = value[key]
        return None if value is None else sign * float(value)

    return read


def _agreement(problem: ProblemSamples, i: int) -> float:
    cluster = problem.clusters[i]
    return 0.0 if cluster is None else problem.clusters.count(cluster) / problem.n


def _catalogue() -> dict[str, Signal]:
    signals = [
        Signal("agreement", "share of the problem's samples in the response's answer cluster", _agreement, lambda v: v)
    ]
    for when, suffix in (("before", ""), ("after", "_after")):
        source = "the model's distribution" if when == "before" else "the distribution after the EM method"
        signals += [
            Signal(
                f"neg_entropy{suffix}", f"-mean token entropy, {source}", _field(f"entropy_{when}", sign=-1), math.exp
            ),
            Signal(
                f"rent{suffix}",
                f"-mean entropy of the last third (RENT), {source}",
                _field(f"entropy_{when}_thirds", 2, sign=-1),
                math.exp,
            ),
            Signal(
                f"self_certainty{suffix}", f"mean KL(U || p) (Intuitor), {source}", _field(f"self_certainty_{when}")
            ),
            Signal(f"top1{suffix}", f"mean top-1 probability, {source}", _field(f"top1_{when}"), lambda v: v),
        ]
        signals += [
            Signal(f"conf_{name}{suffix}", f"DeepConf {name} confidence, {source}", _field(f"conf_{when}", name))
            for name in CONF_FIELDS
        ]
    return {s.name: s for s in signals}


SIGNALS = _catalogue()
DEFAULT_SIGNALS = ("agreement", "neg_entropy", "rent", "self_certainty", "conf_tail", "conf_bottom10", "conf_lowest")


def signal_names(names: list[str] | None) -> list[Signal]:
    """The signals named (default :data:`DEFAULT_SIGNALS`); an unknown name lists the known ones."""
    unknown = [n for n in names or [] if n not in SIGNALS]
    if unknown:
        raise ValueError(f"unknown signal(s) {', '.join(unknown)}; known: {', '.join(SIGNALS)}")
    return [SIGNALS[n] for n in names or DEFAULT_SIGNALS]

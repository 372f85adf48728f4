"""Pure functions of a checkpoint sweep: the transitional-word rate of responses, the
entropy-performance law and the collapse alarm.

* Transitional words: occurrences of self-correction phrases ("wait", "let me check", ...) per
  1,000 words of response; a phrase inside a longer one ("wait" in "but wait") counts once.
* Entropy-performance law (Cui et al. 2025, "The Entropy Mechanism of RL for Reasoning LMs",
  arXiv 2505.22617, Eq. 1): ``R = -a * exp(H) + b``, fitted by least squares of R on ``exp(H)``.
  Its ceiling, the performance predicted once the entropy is spent (H = 0), is ``b - a``.
* Collapse alarm: between two consecutive checkpoints accuracy dropped (the gate's paired test
  says so) while the mean entropy kept falling.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any, Sequence

TRANSITIONAL_PHRASES = (
    "wait",
    "but wait",
    "hmm",
    "let me check",
    "let me verify",
    "let me double-check",
    "let me double check",
    "let me recheck",
    "let me re-check",
    "let me re-examine",
    "let me reconsider",
    "double-check",
    "on second thought",
    "alternatively",
)
_WORD = re.compile(r"\S+")


def phrase_pattern(phrases: Sequence[str] = TRANSITIONAL_PHRASES) -> re.Pattern[str]:
    """One case-insensitive pattern for ``phrases``, longest first, on word boundaries."""
    if not phrases:
        raise ValueError("give at least one transitional phrase")
    ordered = sorted({p.strip().lower() for p in phrases if p.strip()}, key=len, reverse=True)
    body = "|".join(r"\s+".join(re.escape(w) for w in p.split()) for p in ordered)
    return re.compile(rf"(?<![\w-])(?:{body})(?![\w-])", re.IGNORECASE)


def transitional_counts(texts: Sequence[str], phrases: Sequence[str] = TRANSITIONAL_PHRASES) -> tuple[int, int]:
    """(phrase occurrences, whitespace-separated words) summed over ``texts``."""
    pattern = phrase_pattern(phrases)
    hits = sum(len(pattern.findall(t)) for t in texts)
    words = sum(len(_WORD.findall(t)) for t in texts)
    return hits, words


def transitional_rate(texts: Sequence[str], phrases: Sequence[str] = TRANSITIONAL_PHRASES) -> float | None:
    """Transitional phrases per 1,000 words over all ``texts`` pooled; None when they hold no word."""
    hits, words = transitional_counts(texts, phrases)
    return 1000.0 * hits / words if words else None


@dataclass(frozen=True)
class EntropyLawFit:
    """``R = -a * exp(H) + b`` fitted to ``n`` checkpoints; ``ceiling = b - a`` (R at H = 0)."""

    a: float
    b: float
    ceiling: float
    r2: float | None  # None when the points leave no variance to explain (all R equal)
    n: int

    def predict(self, entropy: float) -> float:
        return -self.a * math.exp(entropy) + self.b

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_entropy_law(entropies: Sequence[float], performance: Sequence[float]) -> EntropyLawFit | None:
    """Least-squares fit of ``R = -a * exp(H) + b``; None with fewer than two distinct entropies."""
    if len(entropies) != len(performance):
        raise ValueError(f"need one performance per entropy ({len(entropies)} vs {len(performance)})")
    points = [(math.exp(h), r) for h, r in zip(entropies, performance) if h is not None and r is not None]
    n = len(points)
    if n < 2:
        return None
    mx = math.fsum(x for x, _ in points) / n
    my = math.fsum(y for _, y in points) / n
    sxx = math.fsum((x - mx) ** 2 for x, _ in points)
    if sxx <= 1e-12 * max(mx * mx, 1e-300):
        return None
    slope = math.fsum((x - mx) * (y - my) for x, y in points) / sxx
    a, b = -slope, my - slope * mx
    syy = math.fsum((y - my) ** 2 for _, y in points)
    residual = math.fsum((y - (b - a * x)) ** 2 for x, y in points)
    return EntropyLawFit(a=a, b=b, ceiling=b - a, r2=1 - residual / syy if syy > 0 else None, n=n)


@dataclass(frozen=True)
class CollapseAlarm:
    """Accuracy dropped significantly from ``from_step`` to ``step`` while entropy fell."""

    step: int
    from_step: int
    accuracy_before: float
    accuracy: float
    entropy_before: float
    entropy: float

    def message(self) -> str:
        return (
            f"collapse at step {self.step}: accuracy {100 * self.accuracy_before:.1f} -> {100 * self.accuracy:.1f} "
            f"(significant drop since step {self.from_step}) while entropy kept falling "
            f"({self.entropy_before:.4f} -> {self.entropy:.4f} nats)"
        )


def collapse_alarms(
    steps: Sequence[int],
    accuracy: Sequence[float],
    entropy: Sequence[float | None],
    dropped: Sequence[bool],
    min_entropy_fall: float = 0.0,
) -> list[CollapseAlarm]:
    """An alarm at checkpoint i when ``dropped[i - 1]`` (accuracy fell significantly from checkpoint
    i - 1, by the paired test) and entropy fell over the same interval by more than ``min_entropy_fall``
    nats. Checkpoints are in step order; ``dropped`` has one entry per consecutive pair."""
    if not len(steps) == len(accuracy) == len(entropy) == len(dropped) + 1:
        raise ValueError(
            f"need n steps, accuracies and entropies and n - 1 drop flags "
            f"({len(steps)}, {len(accuracy)}, {len(entropy)}, {len(dropped)})"
        )
    if list(steps) != sorted(set(steps)):
        raise ValueError(f"steps must be strictly increasing, got {list(steps)}")
    alarms = []
    for i in range(1, len(steps)):
        h0, h1 = entropy[i - 1], entropy[i]
        if dropped[i - 1] and h0 is not None and h1 is not None and h0 - h1 > min_entropy_fall:
            alarms.append(CollapseAlarm(steps[i], steps[i - 1], accuracy[i - 1], accuracy[i], h0, h1))
    return alarms

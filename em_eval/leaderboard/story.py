"""The demo page's "EM-INF at work" section: what changed against plain sampling, and where.

Pure data and comparisons; the token traces themselves come from :mod:`em_eval.em_inf.trace`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from em_eval.em_inf.trace import TokenStep
from em_eval.results import Run, task_effect


@dataclass(frozen=True)
class Comparison:
    """EM-INF against plain sampling at one temperature on one task (same seeds, same problems)."""

    temperature: float
    task: str
    changed: int  # problems whose first response differs
    total: int
    adjusted_share: float | None  # share of EM-INF's tokens whose distribution it changed
    mean_tv: float | None  # mean total-variation change of the traced tokens' sampling distributions


@dataclass(frozen=True)
class TokenView:
    """One response, token by token."""

    title: str
    temperature: float
    steps: tuple[TokenStep, ...]
    other: str | None = None  # plain sampling's response to the same problem, where it differs


@dataclass(frozen=True)
class Story:
    notes: tuple[str, ...]
    comparisons: tuple[Comparison, ...] = ()
    views: tuple[TokenView, ...] = field(default_factory=tuple)


def changed_responses(plain: Run, em: Run, task: str) -> tuple[int, int]:
    """How many of the problems both runs answered got a different first response, of how many."""
    ours = {p.doc_id: p.response for p in em.tasks[task].problems}
    theirs = {p.doc_id: p.response for p in plain.tasks[task].problems}
    common = sorted(set(ours) & set(theirs))
    return sum(ours[i] != theirs[i] for i in common), len(common)


def compare(
    plain: Run, em: Run, temperature: float, traced: Mapping[str, Sequence[Sequence[TokenStep]]] | None = None
) -> list[Comparison]:
    """One :class:`Comparison` per task the two runs share; ``traced``: per task, token traces of
    some of EM-INF's responses, for the mean change to the sampling distribution."""
    rows = []
    for task in [t for t in em.tasks if t in plain.tasks]:
        tvs = [s.tv for steps in (traced or {}).get(task, ()) for s in steps]
        changed, total = changed_responses(plain, em, task)
        share = task_effect(em.tasks[task].problems)["adjusted_share"]
        rows.append(Comparison(temperature, task, changed, total, share, statistics.fmean(tvs) if tvs else None))
    return rows

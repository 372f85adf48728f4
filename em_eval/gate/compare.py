"""Gate a candidate run against a baseline run, task by task, on the same problems.

A task *fails* when the candidate's drop is statistically significant and larger than the
margin: the upper end of the (1 - alpha') interval of candidate - baseline lies below
``-margin``, with alpha' = alpha / (number of tasks) (Bonferroni, so gating many tasks does
not multiply false alarms). Large significant gains are flagged as suspicious (they more
often mean a broken extractor or a changed problem set than a real improvement), as is a
jump in the "no answer extracted" rate. Anything that makes the runs incomparable (other
problems, other targets, another grader, other samples per problem, missing tasks) raises
:class:`MismatchError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from em_eval.gate.stats import PairedComparison, bonferroni, mcnemar_exact, paired_bootstrap
from em_eval.results import Run, TaskRun
from em_eval.user_errors import UserError


class MismatchError(UserError, ValueError):
    """The two runs do not evaluate the same thing."""


@dataclass(frozen=True)
class GateSettings:
    alpha: float = 0.05
    margin: float = 0.0
    power: float = 0.8
    suspicious_gain: float = 0.10
    no_answer_jump: float = 0.10
    resamples: int = 10000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"--alpha must be in (0, 1), got {self.alpha}")
        if not 0 <= self.margin < 1:
            raise ValueError(f"--margin must be in [0, 1) (a fraction, e.g. 0.02 for 2 points), got {self.margin}")
        if not 0 < self.power < 1:
            raise ValueError(f"--power must be in (0, 1), got {self.power}")


@dataclass
class TaskVerdict:
    task: str
    metric: str
    comparison: PairedComparison
    alpha: float
    margin: float
    regression: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "fail" if self.regression else ("warn" if self.warnings else "pass")

    def summary(self) -> str:
        c = self.comparison
        mdd = (
            f"no drop the baseline could suffer is detectable with {c.n} problems"
            if c.min_detectable_drop is None
            else f"smallest detectable drop {100 * c.min_detectable_drop:.1f} points at {100 * c.power:.0f}% power"
        )
        return (
            f"{self.task}: {100 * c.baseline:.1f} -> {100 * c.candidate:.1f} ({100 * c.diff:+.1f} points, "
            f"{100 * c.confidence:.1f}% CI {100 * c.ci_low:+.1f} to {100 * c.ci_high:+.1f}; "
            f"{c.test} p={c.p_value:.3g}; "
            f"n={c.n}; {mdd})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "metric": self.metric,
            "status": self.status,
            "regression": self.regression,
            "alpha": self.alpha,
            "margin": self.margin,
            "warnings": self.warnings,
            **self.comparison.as_dict(),
        }


def gate(
    baseline: Run, candidate: Run, settings: GateSettings, tasks: Sequence[str] | None = None
) -> list[TaskVerdict]:
    """One verdict per task; raises :class:`MismatchError` if the runs are not comparable."""
    names = _tasks(baseline, candidate, tasks)
    alpha = bonferroni(settings.alpha, len(names))
    return [_verdict(baseline.tasks[t], candidate.tasks[t], alpha, settings) for t in names]


def _tasks(baseline: Run, candidate: Run, wanted: Sequence[str] | None) -> list[str]:
    b, c = set(baseline.tasks), set(candidate.tasks)
    if wanted:
        missing = [
            f"{t} (not in {'baseline' if t not in b else 'candidate'})" for t in wanted if t not in b or t not in c
        ]
        if missing:
            raise MismatchError(f"--tasks names tasks the runs do not both have: {', '.join(missing)}")
        return list(dict.fromkeys(wanted))
    if b != c:
        raise MismatchError(
            f"the runs cover different tasks (baseline only: {sorted(b - c) or '-'}; "
            f"candidate only: {sorted(c - b) or '-'}); "
            "evaluate the same tasks or pick common ones with --tasks"
        )
    return sorted(b)


def check_comparable(base: TaskRun, cand: TaskRun) -> None:
    """Raise :class:`MismatchError` unless both runs graded the same problems the same way."""
    task = base.task
    if base.metric != cand.metric or base.filter != cand.filter:
        raise MismatchError(f"{task}: metrics differ ({base.metric},{base.filter} vs {cand.metric},{cand.filter})")
    diff = [k for k in base.grader if base.grader[k] != cand.grader.get(k)]
    if diff:
        raise MismatchError(
            f"{task}: the graders differ in {', '.join(diff)}; re-grade both runs with the same task version"
        )
    b_ids, c_ids = {p.doc_id for p in base.problems}, {p.doc_id for p in cand.problems}
    if b_ids != c_ids:
        only_b, only_c = sorted(b_ids - c_ids), sorted(c_ids - b_ids)
        raise MismatchError(
            f"{task}: the problem sets differ ({len(b_ids)} vs {len(c_ids)} problems; baseline only {only_b[:5]}, "
            f"candidate only {only_c[:5]}); run both with the same --limit/--samples"
        )
    by_id = {p.doc_id: p for p in cand.problems}
    for p in base.problems:
        q = by_id[p.doc_id]
        if p.doc_hash and q.doc_hash and p.doc_hash != q.doc_hash:
            raise MismatchError(f"{task}: problem {p.doc_id} differs between the runs (doc_hash); the datasets differ")
        if p.target_hash and q.target_hash and p.target_hash != q.target_hash:
            raise MismatchError(f"{task}: the gold answer of problem {p.doc_id} differs between the runs (target_hash)")
    if base.samples_per_problem != cand.samples_per_problem:
        raise MismatchError(
            f"{task}: samples per problem differ ({base.samples_per_problem} vs {cand.samples_per_problem}); "
            "compare runs with the same repeats"
        )


def _verdict(base: TaskRun, cand: TaskRun, alpha: float, s: GateSettings) -> TaskVerdict:
    check_comparable(base, cand)
    by_id = {p.doc_id: p for p in cand.problems}
    b_scores = [p.score for p in base.problems]
    c_scores = [by_id[p.doc_id].score for p in base.problems]
    if base.binary and cand.binary:
        comp = mcnemar_exact(b_scores, c_scores, alpha, s.margin, s.power)
    else:
        comp = paired_bootstrap(b_scores, c_scores, alpha, s.margin, s.power, s.resamples, s.seed)
    regression = comp.ci_high < -s.margin
    warnings = []
    if comp.diff > s.suspicious_gain and comp.ci_low > 0:
        warnings.append(
            f"suspiciously large gain ({100 * comp.diff:+.1f} points, over {100 * s.suspicious_gain:.0f}): check the "
            "answer extractor and the problem set of both runs before trusting it"
        )
    jump = _no_answer_rate(cand) - _no_answer_rate(base)
    if abs(jump) > s.no_answer_jump:
        warnings.append(
            f"'no answer extracted' rate changed by {100 * jump:+.1f} points: "
            "the output format or the extractor changed"
        )
    return TaskVerdict(base.task, base.metric, comp, alpha, s.margin, regression, warnings)


def _no_answer_rate(run: TaskRun) -> float:
    flags = [p.flags.get("no_answer") for p in run.problems]
    known = [f for f in flags if f is not None]
    return sum(known) / len(known) if known else 0.0

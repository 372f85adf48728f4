"""Inference-time baselines selectable as model args (self-consistency, iterative refinement).

Backends pop the arguments with :func:`pop_method_args` and route generation through
:func:`generate_with_method`, so every method runs on top of the backend's own batched
generation (and its EM-INF / adaptive-temperature logits processing):

* ``decode_method=self_consistency,decode_n=4``: N samples per prompt in one batched call;
  the returned completion is one whose extracted answer is equivalent to the most others
  (ties broken by a seeded draw), as in the paper's ``self_consistency_generator.py``.
* ``decode_method=refinement,decode_n=3``: N rounds; round k's prompt is round k-1's prompt
  + its completion + ``"\\n\\n"`` + the original (chat-formatted) prompt. The last round's
  completion is returned. The context is bounded by the backend's left truncation.

Every request's gen_kwargs receive the telemetry of all its generations (``em_telemetry``,
so compute is counted in full) and a ``decode`` record (method, samples, votes, choice).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Sequence

from em_eval.records import TELEMETRY_KEY
from em_eval.decoding.sampling import is_sampling
from em_eval.user_errors import ArgumentNameError, ArgumentValueError, did_you_mean

log = logging.getLogger(__name__)

PlainGenerate = Callable[[list[Any]], list[str]]
Extract = Callable[[str], "str | None"]
Cluster = Callable[[Sequence["str | None"]], Sequence[Hashable | None]]

METHODS = ("plain", "self_consistency", "refinement")
ALIASES = {"greedy": "plain", "sampling": "plain", "sc": "self_consistency", "iterative_refinement": "refinement"}
DEFAULT_N = {"plain": 1, "self_consistency": 4, "refinement": 3}
RECORD_KEY = "decode"
REFINE_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class DecodeMethod:
    """Which inference-time method wraps plain generation: ``name``, ``n`` samples or rounds,
    and the ``seed`` of self-consistency's tie-break."""

    name: str = "plain"
    n: int = 1
    seed: int = 42

    def __post_init__(self) -> None:
        if self.name not in METHODS:
            raise ArgumentValueError(
                f"decode_method={self.name!r} is not one of {', '.join(METHODS)} "
                f"(aliases: {', '.join(f'{a}->{m}' for a, m in ALIASES.items())})"
            )
        if self.n < 1 or (self.name == "plain" and self.n != 1):
            raise ArgumentValueError(f"decode_n={self.n} is invalid for decode_method={self.name}: use n >= 1 (plain: n = 1)")

    def as_args(self) -> dict[str, Any]:
        """The method as model args (what the results file records)."""
        return {"decode_method": self.name, "decode_n": self.n, "decode_seed": self.seed}

    @property
    def label(self) -> str:
        """Human-readable name, e.g. ``self-consistency (N=4)``."""
        return {"plain": "plain", "self_consistency": f"self-consistency (N={self.n})",
                "refinement": f"iterative refinement (N={self.n})"}[self.name]


def pop_method_args(args: dict[str, Any]) -> DecodeMethod:
    """Remove the method's model args (``decode_method``, ``decode_n``, ``decode_seed``) from
    ``args`` and return the selected method."""
    known = {"decode_method", "decode_n", "decode_seed"}
    unknown = [k for k in args if k.startswith("decode_") and k not in known]
    if unknown:
        raise ArgumentNameError(f"unknown decoding argument(s) {', '.join(unknown)}"
                                f"{did_you_mean(unknown[0], known) if len(unknown) == 1 else ''}; known: {', '.join(sorted(known))}")
    name = str(args.pop("decode_method", "plain")).strip().lower()
    name = ALIASES.get(name, name)
    try:
        n = int(args.pop("decode_n", DEFAULT_N.get(name, 1)))
        seed = int(args.pop("decode_seed", 42))
    except (TypeError, ValueError) as exc:
        raise ArgumentValueError(f"decode_n and decode_seed must be integers ({exc})") from None
    return DecodeMethod(name=name, n=n, seed=seed)


def generate_with_method(
    method: DecodeMethod,
    requests: list[Any],
    plain: PlainGenerate,
    *,
    extract: Extract | None = None,
    cluster: Cluster | None = None,
) -> list[str]:
    """Generate ``requests`` with ``method`` built on ``plain`` generation.

    Self-consistency extracts each sample's answer with ``extract`` and groups equivalent
    answers with ``cluster``; both default to the math grader's (imported lazily)."""
    if method.name == "plain" or not requests:
        return plain(requests)
    if method.name == "self_consistency":
        if extract is None or cluster is None:
            default_extract, default_cluster = math_answer_functions()
            extract, cluster = extract or default_extract, cluster or default_cluster
        return _self_consistency(method, requests, plain, extract, cluster)
    return _refinement(method, requests, plain)


# ---- self-consistency -----------------------------------------------------------------
def majority_index(cluster_ids: Sequence[Hashable | None], rng: random.Random) -> tuple[int, list[int]]:
    """Index of a sample in the largest equivalence cluster, and every sample's vote count.

    A sample without an answer (cluster ``None``) counts only itself; ties are broken by ``rng``."""
    counts = Counter(c for c in cluster_ids if c is not None)
    votes = [counts[c] if c is not None else 1 for c in cluster_ids]
    best = max(votes)
    return rng.choice([i for i, v in enumerate(votes) if v == best]), votes


def _self_consistency(
    method: DecodeMethod, requests: list[Any], plain: PlainGenerate, extract: Extract, cluster: Cluster
) -> list[str]:
    if method.n > 1 and any(not is_sampling(_gen_kwargs(req)) for req in requests):
        log.warning("self-consistency with greedy decoding draws %d identical samples; sample instead "
                    "(--gen_kwargs do_sample=true,temperature=0.1)", method.n)
    copies = [_copy_request(req, req.args[0]) for req in requests for _ in range(method.n)]
    outputs = plain(copies)
    chosen = []
    for i, req in enumerate(requests):
        group = slice(i * method.n, (i + 1) * method.n)
        samples = outputs[group]
        answers = [extract(s) for s in samples]
        pick, votes = majority_index(list(cluster(answers)), _tie_rng(method.seed, req.args[0]))
        _merge_telemetry(req, copies[group])
        _record(req, {**method.as_args(), "samples": samples, "answers": answers, "votes": votes, "chosen": pick})
        chosen.append(samples[pick])
    return chosen


def _tie_rng(seed: int, context: str) -> random.Random:
    """A tie-break RNG that depends on the prompt, not on batch order."""
    digest = hashlib.sha256(f"{seed}\0{context}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def math_answer_functions() -> tuple[Extract, Cluster]:
    """The math grader's ``extract_answer`` and ``cluster_answers`` (imported lazily)."""
    from em_eval.tasks.math.grade import cluster_answers, extract_answer

    return extract_answer, cluster_answers


# ---- iterative refinement -------------------------------------------------------------
def refinement_prompt(previous_prompt: str, previous_completion: str, original_prompt: str) -> str:
    """The next round's prompt: the model re-reads its previous attempt, then the question again."""
    return previous_prompt + previous_completion + REFINE_SEPARATOR + original_prompt


def _refinement(method: DecodeMethod, requests: list[Any], plain: PlainGenerate) -> list[str]:
    originals = [req.args[0] for req in requests]
    prompts = list(originals)
    rounds: list[list[Any]] = []
    completions: list[list[str]] = [[] for _ in requests]
    outputs: list[str] = []
    for k in range(method.n):
        if k:
            prompts = [refinement_prompt(p, o, q) for p, o, q in zip(prompts, outputs, originals, strict=True)]
        round_reqs = [_copy_request(req, prompt) for req, prompt in zip(requests, prompts, strict=True)]
        outputs = plain(round_reqs)
        rounds.append(round_reqs)
        for i, out in enumerate(outputs):
            completions[i].append(out)
    for i, req in enumerate(requests):
        _merge_telemetry(req, [r[i] for r in rounds])
        _record(req, {**method.as_args(), "rounds": completions[i]})
    return outputs


# ---- request plumbing -----------------------------------------------------------------
def _copy_request(req: Any, context: str) -> Any:
    """A copy of ``req`` with ``context`` and its own gen_kwargs (without our records)."""
    context_args = req.args
    gen_kwargs = context_args[1] if len(context_args) > 1 else {}
    if isinstance(gen_kwargs, dict):
        gen_kwargs = {k: copy.deepcopy(v) for k, v in gen_kwargs.items() if k not in (TELEMETRY_KEY, RECORD_KEY)}
    clone = copy.copy(req)
    clone.arguments = (context, gen_kwargs, *context_args[2:])
    return clone


def _merge_telemetry(req: Any, generated: list[Any]) -> None:
    """Give ``req`` the telemetry records of every request generated on its behalf."""
    records = [rec for g in generated for rec in _gen_kwargs(g).get(TELEMETRY_KEY, [])]
    target = _gen_kwargs(req)
    if records and isinstance(target, dict):
        target.setdefault(TELEMETRY_KEY, []).extend(records)


def _record(req: Any, record: dict[str, Any]) -> None:
    target = _gen_kwargs(req)
    if isinstance(target, dict):
        target[RECORD_KEY] = record


def _gen_kwargs(req: Any) -> dict[str, Any]:
    args = req.args
    return args[1] if len(args) > 1 and isinstance(args[1], dict) else {}

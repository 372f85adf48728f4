"""Inference-time baselines selectable as model args (self-consistency, iterative refinement).

Backends pop the arguments with :func:`pop_method_args` and route generation through
:func:`generate_with_method`, so every method runs on top of the backend's own batched
generation (and its EM-INF / adaptive-temperature logits processing). What differs per task
(rounds, feedback, how answers are grouped) comes from the task (:mod:`em_eval.decoding.task_hooks`):

* ``decode_method=self_consistency,decode_n=4``: N samples per prompt in one batched call, each
  with its own random stream (the paper's N samples all used vLLM ``seed=42``); the returned
  completion is one that agrees with the most samples under the task's grouping (ties broken by
  a seeded draw), as in the paper's ``self_consistency_generator.py``. Tasks whose grouping is
  ``none`` (code) refuse it.
* ``decode_method=refinement[,decode_n=N]``: the task's number of rounds unless ``decode_n`` is
  given; round k's prompt is round k-1's prompt + the task's feedback on its completion + the
  original (chat-formatted) prompt. The last round's completion is returned. A prompt that
  outgrows the context is the backend's to fit (left truncation); no round is skipped.

Every request's result (:class:`~em_eval.records.Generated`) carries the telemetry of all its generations
(so compute is counted in full; refinement tags each record with its ``refine_round``) and a ``decode``
record (method, the N used and where it came from, samples or rounds, votes, choice).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from em_eval.decoding.sampling import is_sampling
from em_eval.decoding.task_hooks import EOS_FEEDBACK, TaskDecoding, completion_feedback, task_decoding
from em_eval.records import Generated
from em_eval.user_errors import ArgumentNameError, ArgumentValueError, did_you_mean

log = logging.getLogger(__name__)

PlainGenerate = Callable[[list[Any]], list[Generated]]
TaskLookup = Callable[["str | None"], TaskDecoding]

METHODS = ("plain", "self_consistency", "refinement")
ALIASES = {"greedy": "plain", "sampling": "plain", "sc": "self_consistency", "iterative_refinement": "refinement"}
DEFAULT_N = {"plain": 1, "self_consistency": 4}  # refinement: the task's refinement_rounds
SAMPLE_SEEDS = "independent (the paper's N samples share vLLM seed=42)"


@dataclass(frozen=True)
class DecodeMethod:
    """Which inference-time method wraps plain generation: ``name``, ``n`` samples or rounds
    (None: the task's refinement rounds), and the ``seed`` of self-consistency's tie-break."""

    name: str = "plain"
    n: int | None = 1
    seed: int = 42

    def __post_init__(self) -> None:
        if self.name not in METHODS:
            raise ArgumentValueError(
                f"decode_method={self.name!r} is not one of {', '.join(METHODS)} "
                f"(aliases: {', '.join(f'{a}->{m}' for a, m in ALIASES.items())})"
            )
        if (
            (self.n is None and self.name != "refinement")
            or (self.n is not None and self.n < 1)
            or (self.name == "plain" and self.n != 1)
        ):
            raise ArgumentValueError(
                f"decode_n={self.n} is invalid for decode_method={self.name}: use n >= 1 (plain: n = 1)"
            )

    def as_args(self) -> dict[str, Any]:
        """The method as model args, what the results file records (``decode_n`` None: each task's rounds)."""
        args: dict[str, Any] = {"decode_method": self.name, "decode_n": self.n, "decode_seed": self.seed}
        if self.name == "self_consistency":
            args["sample_seeds"] = SAMPLE_SEEDS
        return args

    @property
    def label(self) -> str:
        """Human-readable name, e.g. ``self-consistency (N=4)``."""
        n = "each task's rounds" if self.n is None else self.n
        return {
            "plain": "plain",
            "self_consistency": f"self-consistency (N={n})",
            "refinement": f"iterative refinement (N={n})",
        }[self.name]


def pop_method_args(args: dict[str, Any]) -> DecodeMethod:
    """Remove the method's model args (``decode_method``, ``decode_n``, ``decode_seed``) from
    ``args`` and return the selected method."""
    known = {"decode_method", "decode_n", "decode_seed"}
    unknown = [k for k in args if k.startswith("decode_") and k not in known]
    if unknown:
        hint = did_you_mean(unknown[0], known) if len(unknown) == 1 else ""
        raise ArgumentNameError(
            f"unknown decoding argument(s) {', '.join(unknown)}{hint}; known: {', '.join(sorted(known))}"
        )
    name = str(args.pop("decode_method", "plain")).strip().lower()
    name = ALIASES.get(name, name)
    try:
        n = args.pop("decode_n", None)
        n = DEFAULT_N.get(name, 1) if n is None and name != "refinement" else n
        n = None if n is None else int(n)
        seed = int(args.pop("decode_seed", 42))
    except (TypeError, ValueError) as exc:
        raise ArgumentValueError(f"decode_n and decode_seed must be integers ({exc})") from None
    return DecodeMethod(name=name, n=n, seed=seed)


def generate_with_method(
    method: DecodeMethod,
    requests: list[Any],
    plain: PlainGenerate,
    *,
    eos_token: str | None = None,
    tasks: TaskLookup = task_decoding,
) -> list[Generated]:
    """Generate ``requests`` with ``method`` built on ``plain`` generation.

    ``tasks`` gives each request's task settings (by ``task_name``); ``eos_token`` is the
    tokenizer's, for refinement feedback that ends the model's turn with it (LeetCode)."""
    if method.name == "plain" or not requests:
        return plain(requests)
    settings = [tasks(req.task_name) for req in requests]
    if method.name == "self_consistency":
        return _self_consistency(method, requests, plain, settings)
    return _refinement(method, requests, plain, settings, eos_token)


# ---- self-consistency -----------------------------------------------------------------
def majority_index(votes: Sequence[int], rng: random.Random) -> int:
    """Index of a sample with the most votes; ties are broken by ``rng``."""
    best = max(votes)
    return rng.choice([i for i, v in enumerate(votes) if v == best])


def refuse_self_consistency(settings: Sequence[TaskDecoding]) -> None:
    """A clear error when a task has no self-consistency (its ``sc_grouping`` is ``none``)."""
    tasks = sorted({s.task for s in settings if s.votes() is None})
    if tasks:
        raise ArgumentValueError(
            f"decode_method=self_consistency is not defined for task {', '.join(tasks)}: its answers are programs, "
            "and the paper reports no self-consistency on code (Table 3: '-'); choosing one program without running "
            "it would only be sampling at N times the cost. Use decode_method=plain or refinement for these tasks, "
            "and self-consistency on the math and UGPhysics tasks (a separate lm_eval run)"
        )


def _self_consistency(
    method: DecodeMethod, requests: list[Any], plain: PlainGenerate, settings: list[TaskDecoding]
) -> list[Generated]:
    refuse_self_consistency(settings)
    n = method.n or DEFAULT_N["self_consistency"]
    if n > 1 and any(not is_sampling(_gen_kwargs(req)) for req in requests):
        log.warning(
            "self-consistency with greedy decoding draws %d identical samples; sample instead "
            "(--gen_kwargs do_sample=true,temperature=0.1)",
            n,
        )
    copies = [_copy_request(req, req.args[0]) for req in requests for _ in range(n)]
    outputs = plain(copies)
    chosen = []
    for i, (req, task) in enumerate(zip(requests, settings, strict=True)):
        group = outputs[i * n : (i + 1) * n]
        samples = [gen.text for gen in group]
        answers, votes = task.votes()(samples, req.doc)
        pick = majority_index(votes, _tie_rng(method.seed, req.args[0]))
        chosen.append(
            Generated(
                samples[pick],
                _merged_telemetry(group),
                {
                    **method.as_args(),
                    "grouping": task.sc_grouping,
                    "samples": samples,
                    "answers": answers,
                    "votes": votes,
                    "chosen": pick,
                },
            )
        )
    return chosen


def _tie_rng(seed: int, context: str) -> random.Random:
    """A tie-break RNG that depends on the prompt, not on batch order."""
    digest = hashlib.sha256(f"{seed}\0{context}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


# ---- iterative refinement -------------------------------------------------------------
def refinement_prompt(
    previous_prompt: str,
    previous_completion: str,
    original_prompt: str,
    feedback: Callable[[str, str], str] = completion_feedback,
    eos_token: str = "",
) -> str:
    """The next round's prompt: the previous one, what ``feedback`` shows of its completion, the question again."""
    return previous_prompt + feedback(previous_completion, eos_token) + original_prompt


def _refinement(
    method: DecodeMethod, requests: list[Any], plain: PlainGenerate, settings: list[TaskDecoding], eos_token: str | None
) -> list[Generated]:
    needs_eos = sorted({s.task for s in settings if s.refinement_feedback in EOS_FEEDBACK})
    if eos_token is None and needs_eos:
        log.warning(
            "refinement: the backend gave no EOS token, so the feedback of %s, which ends the model's "
            "turn with it, goes without",
            ", ".join(needs_eos),
        )
    rounds = [method.n or s.refinement_rounds for s in settings]
    feedback = [s.feedback() for s in settings]
    originals = [req.args[0] for req in requests]
    prompts = list(originals)
    completions: list[list[str]] = [[] for _ in requests]
    generated: list[list[Generated]] = [[] for _ in requests]
    for k in range(max(rounds)):
        active = [i for i, n in enumerate(rounds) if n > k]
        for i in active if k else ():
            prompts[i] = refinement_prompt(prompts[i], completions[i][-1], originals[i], feedback[i], eos_token or "")
        round_reqs = [_copy_request(requests[i], prompts[i]) for i in active]
        for i, out in zip(active, plain(round_reqs), strict=True):
            completions[i].append(out.text)
            generated[i].append(out)
    results = []
    for task, n, done, gens in zip(settings, rounds, completions, generated, strict=True):
        source = "decode_n" if method.n else ("task metadata" if "refinement_rounds" in task.declared else "default")
        results.append(
            Generated(
                done[-1],
                _merged_telemetry(gens, tag="refine_round"),
                {
                    **method.as_args(),
                    "decode_n": n,
                    "decode_n_from": source,
                    "feedback": task.refinement_feedback,
                    "rounds": done,
                },
            )
        )
    return results


# ---- request plumbing -----------------------------------------------------------------
def _copy_request(req: Any, context: str) -> Any:
    """A copy of ``req`` with ``context`` and its own gen_kwargs."""
    context_args = req.args
    gen_kwargs = context_args[1] if len(context_args) > 1 else {}
    if isinstance(gen_kwargs, dict):
        gen_kwargs = copy.deepcopy(gen_kwargs)
    clone = copy.copy(req)
    clone.arguments = (context, gen_kwargs, *context_args[2:])
    return clone


def _merged_telemetry(generated: list[Generated], tag: str | None = None) -> tuple[dict[str, Any], ...]:
    """The telemetry records of every generation made for one request (numbered by ``tag``)."""
    return tuple({**rec, tag: k} if tag else rec for k, gen in enumerate(generated, start=1) for rec in gen.telemetry)


def _gen_kwargs(req: Any) -> dict[str, Any]:
    args = req.args
    return args[1] if len(args) > 1 and isinstance(args[1], dict) else {}

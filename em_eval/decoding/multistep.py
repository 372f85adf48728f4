"""Multi-step generation: requests whose later prompts depend on the model's earlier outputs.

lm-eval sends one ``generate_until`` request per document. A task opts into a multi-step
protocol by putting ``em_multistep: <protocol>`` in its ``generation_kwargs``; our backends
call :func:`generate_until_with_steps`, which runs every such request as a session
(see :class:`Session`) step by step, batched across documents: one ``plain`` call per step
round. Plain requests pass through untouched, in one ``plain`` call.

Rendering: the request's context is already what lm-eval rendered for step 1 (chat template,
system prompt, description). The first step's text occurs in it once; whatever surrounds it
(``prefix``, ``suffix``) is reused around every later step's text, so each step sees exactly
the rendering lm-eval gave the first, whichever flags (``--apply_chat_template``,
``--system_instruction``) were used.

The request's single response is a JSON record of every step (``em_multistep``, ``protocol``,
``steps``; :func:`em_eval.records.multistep_response`); the task's scorer refuses anything else, so a
backend that ignores the marker fails loudly instead of scoring a one-step run. The request's result
(:class:`~em_eval.records.Generated`) carries the per-step decoding telemetry, one record per generated
step, tagged with its ``step_round``.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from em_eval.decoding.task_hooks import resolve
from em_eval.records import MULTISTEP_KEY, Generated, multistep_response, read_multistep
from em_eval.user_errors import UserError

log = logging.getLogger(__name__)

PROTOCOLS: dict[str, str] = {"scicode": "em_eval.tasks.scicode.prompts:ScicodeSession"}  # imported when used

PlainGenerate = Callable[[list[Any]], list[Generated]]


class Session(Protocol):
    """One document's multi-step generation."""

    def next_prompt(self) -> str | None:
        """Text of the next step's prompt (without rendering), or None when done."""

    def record(self, output: str) -> None:
        """The model's answer to the prompt just returned by :meth:`next_prompt`."""

    def result(self) -> dict[str, Any]:
        """JSON-able record of the whole run (must include ``steps``)."""

    # optional: ``steps_to_generate() -> int``, the model's steps in all, for the progress bar


class MultiStepError(UserError, ValueError):
    """A multi-step request that cannot be run as asked."""


def is_multistep(request: Any) -> bool:
    """Whether an lm-eval Instance asks for a multi-step protocol."""
    args = getattr(request, "args", ())
    return len(args) > 1 and isinstance(args[1], dict) and MULTISTEP_KEY in args[1]


def refuse_multistep(requests: list[Any], backend: str) -> None:
    """Raise a clear error if a backend that cannot run multi-step protocols is handed such requests."""
    tasks = sorted({str(getattr(r, "task_name", "?")) for r in requests if is_multistep(r)})
    if tasks:
        raise MultiStepError(
            f"task {', '.join(tasks)} runs a multi-step protocol ('{MULTISTEP_KEY}'), which lm-eval's {backend} "
            "backend cannot run: it would generate only the first step. Use --model em_inf (same model_args as hf; "
            "em_mode=off for plain decoding), --model em_inf_vllm (same model_args as vllm) or, against a server, "
            "--model em_inf_api (same model_args as local-completions)."
        )


def session_factory(protocol: str) -> Callable[[dict[str, Any]], Session]:
    """The session class registered for ``protocol``."""
    if protocol not in PROTOCOLS:
        raise MultiStepError(f"unknown {MULTISTEP_KEY} protocol {protocol!r}; known: {', '.join(sorted(PROTOCOLS))}")
    return resolve(PROTOCOLS[protocol])


def parse_record(response: str) -> dict[str, Any]:
    """The multi-step record in a response, or a clear error naming the likely cause."""
    record = read_multistep(response)
    if record is None:
        raise MultiStepError(
            "this task needs a multi-step generation record, but the model returned plain text: the "
            f"model backend ignored the '{MULTISTEP_KEY}' generation kwarg and generated only the first step. "
            "Use an em-eval backend (--model em_inf, em_inf_vllm or em_inf_api), which runs the protocol step by step."
        )
    return record


@dataclass
class _Run:
    """A multi-step request in flight: its session, rendering and collected telemetry."""

    request: Any
    session: Session
    prefix: str | None = None
    suffix: str = ""
    telemetry: list[dict[str, Any]] = field(default_factory=list)

    def render(self, text: str) -> str:
        if self.prefix is None:  # first step: find its text in what lm-eval rendered
            context = self.request.args[0]
            if not isinstance(context, str) or text not in context:
                raise MultiStepError(
                    f"{MULTISTEP_KEY}: the first step's prompt does not occur in the request context of task "
                    f"{self.request.task_name!r} doc {self.request.doc_id}; the task's doc_to_text must be "
                    "the session's first prompt"
                )
            at = context.rfind(text)
            self.prefix, self.suffix = context[:at], context[at + len(text) :]
        return self.prefix + text + self.suffix

    def step_request(self, text: str) -> Any:
        from lm_eval.api.instance import Instance

        req = self.request
        kwargs = {k: copy.deepcopy(v) for k, v in req.args[1].items() if k != MULTISTEP_KEY}
        return Instance(
            request_type=req.request_type,
            doc=req.doc,
            arguments=(self.render(text), kwargs),
            idx=req.idx,
            metadata=(req.task_name, req.doc_id, req.repeats),
        )

    def record(self, output: Generated, round_no: int) -> None:
        self.session.record(output.text)
        self.telemetry.extend({**item, "step_round": round_no} for item in output.telemetry)

    def finish(self) -> Generated:
        """The request's result; a decode method's records of the steps are not kept, their telemetry is."""
        return Generated(
            multistep_response(self.request.args[1][MULTISTEP_KEY], self.session.result()), tuple(self.telemetry)
        )


def generate_until_with_steps(
    requests: list[Any], plain: PlainGenerate, quiet_plain: PlainGenerate | None = None, progress: bool = True
) -> list[Generated]:
    """Generate every request; multi-step ones step by step, batched across problems.

    Step rounds go through ``quiet_plain`` (``plain`` without its own progress bar, when given)
    under one bar for the whole run: steps generated of the total, problems finished.
    """
    multi = [i for i, req in enumerate(requests) if is_multistep(req)]
    if not multi:
        return plain(requests)
    outputs: list[Generated | None] = [None] * len(requests)
    single = [i for i in range(len(requests)) if i not in set(multi)]
    if single:
        for i, out in zip(single, plain([requests[i] for i in single]), strict=True):
            outputs[i] = out
    runs = [_Run(requests[i], session_factory(requests[i].args[1][MULTISTEP_KEY])(requests[i].doc)) for i in multi]
    counts = [getattr(run.session, "steps_to_generate", lambda: None)() for run in runs]
    from tqdm.auto import tqdm

    bar = tqdm(
        total=None if None in counts else sum(counts),
        desc=f"{MULTISTEP_KEY}: steps generated",
        unit="step",
        disable=not progress,
    )
    round_no = 0
    with bar:
        while True:
            pending = [(run, prompt) for run in runs if (prompt := run.session.next_prompt()) is not None]
            bar.set_postfix_str(f"problems done {len(runs) - len(pending)}/{len(runs)}", refresh=True)
            if not pending:
                break
            round_no += 1
            step_requests = [run.step_request(prompt) for run, prompt in pending]
            log.info("%s: step round %d, %d prompts", MULTISTEP_KEY, round_no, len(step_requests))
            results = (quiet_plain or plain)(step_requests)
            for (run, _), result in zip(pending, results, strict=True):
                run.record(result, round_no)
            bar.update(len(step_requests))
    for i, run in zip(multi, runs):
        outputs[i] = run.finish()
    missing = [i for i, out in enumerate(outputs) if out is None]
    if missing:
        raise MultiStepError(f"{MULTISTEP_KEY}: no response for requests {missing}")
    return [out for out in outputs if out is not None]

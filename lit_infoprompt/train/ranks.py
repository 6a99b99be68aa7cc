"""Several training processes for one run: who is global rank 0 before the Trainer exists, which run directory
they all write to (claimed once, then handed to the others), and how often Lightning checks for a SIGTERM.

One process (a CPU run, a grid's run on one GPU) takes none of these paths but ``claim_run_dir``'s first branch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import lightning as L
import torch

from lit_infoprompt.config import Config, processes, uses_cuda
from lit_infoprompt.provenance import code_version
from lit_infoprompt.train.lightning_private import replace_sigterm_check, sigterm_check
from lit_infoprompt.train.rundir import new_run_dir, write_start

RUN_DIR_ENV = "LIT_INFOPROMPT_RUN_DIR"

SIGTERM_CHECK_EVERY = 8  # steps between Lightning's checks whether rank 0 received SIGTERM (see below)


def throttle_sigterm_check(trainer: L.Trainer, every: int = SIGTERM_CHECK_EVERY) -> None:
    """Lightning (2.5+) broadcasts rank 0's SIGTERM flag before every training step under DDP: a collective and a
    host sync per step, which set the pace when a frozen encoder's step is a few milliseconds of GPU work. Here
    every ``every`` optimiser steps (the same steps on every process): a preempted job still stops every process
    together, within ``every`` steps. The check is private to Lightning: ``train.lightning_private`` reaches it."""
    check = sigterm_check(trainer)
    if check is None:
        return

    def throttled() -> None:
        if trainer.global_step % every == 0:
            check()

    replace_sigterm_check(trainer, throttled)


def external_ranks(config: Config) -> Optional[tuple]:
    """(global rank, world size, main address, main port) when the training processes were not all started by
    this command's own launcher: torchrun, SLURM (srun with several tasks), or a multi-node launch (one command
    per node, NODE_RANK set). None for one process, or for Lightning's single-node launcher."""
    from lightning.fabric.plugins.environments import LightningEnvironment, SLURMEnvironment, TorchElasticEnvironment

    if processes(config) == 1:  # one process (a grid's run inside a SLURM allocation or torchrun): nobody to agree with
        return None
    if TorchElasticEnvironment.detect():
        env = TorchElasticEnvironment()
    elif SLURMEnvironment.detect() and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        env = SLURMEnvironment()
    elif config.trainer.num_nodes > 1:
        env = LightningEnvironment()
        per_node = processes(config) // config.trainer.num_nodes
        env.set_global_rank(int(os.environ.get("NODE_RANK", 0)) * per_node + int(os.environ.get("LOCAL_RANK", 0)))
        env.set_world_size(processes(config))
    else:
        return None
    return env.global_rank(), env.world_size(), env.main_address, env.main_port


def agreed_run_dir(claim, rank: int, world: int, address: str, port: int, cuda: bool = False) -> Path:
    """Global rank 0 claims the run directory and hands its path to every other rank over the run's own process
    group, started here on the main address and port with the backend Lightning would choose (Lightning then uses
    it rather than starting another): no second port, so nothing collides with a neighbouring job's process group.
    The run directory must be on a filesystem all nodes share."""
    import torch.distributed as dist

    if not dist.is_initialized():
        os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = address, str(port)
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    box = [str(claim()) if rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return Path(box[0])


def is_global_zero(config: Config) -> bool:
    """Whether this process is global rank 0 before the Trainer exists (its launcher's children, torchrun's and
    SLURM's other ranks are not)."""
    ranks = external_ranks(config)
    return ranks[0] == 0 if ranks is not None else os.environ.get("LOCAL_RANK", "0") == "0"


def claim_run_dir(config: Config, split: dict) -> Path:
    """A new run directory, the same for every training process: worker processes that Lightning's launcher
    starts by running this command again (LOCAL_RANK > 0) inherit it; processes started otherwise (torchrun,
    SLURM, other nodes) receive global rank 0's through ``agreed_run_dir``."""
    inherited = os.environ.get(RUN_DIR_ENV)
    if inherited and os.environ.get("LOCAL_RANK", "0") != "0":
        return Path(inherited)
    config.code = code_version()

    def claim() -> Path:
        run_dir = new_run_dir(config, split)
        write_start(run_dir, config, split)
        return run_dir

    ranks = external_ranks(config)
    run_dir = claim() if ranks is None or ranks[1] == 1 else agreed_run_dir(claim, *ranks, cuda=uses_cuda(config.trainer.accelerator))
    os.environ[RUN_DIR_ENV] = str(run_dir)
    return run_dir

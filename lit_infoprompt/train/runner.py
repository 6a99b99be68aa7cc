"""The composition root: config -> seed -> backbone -> data -> module -> callbacks -> logger -> trainer.

Everything that can fail on user input (model, data, template, label words) is built before the run
directory exists, so a bad setting leaves nothing half-written behind.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from omegaconf import OmegaConf

from lit_infoprompt.predictions import degenerate
from lit_infoprompt.model.backbone import Backbone, load_backbone
from lit_infoprompt.train.callbacks import DevCurve, RngState
from lit_infoprompt.train.checkpointing import AtomicCheckpointIO
from lit_infoprompt.config import Config, processes, uses_cuda
from lit_infoprompt.train.console import StepBar, quiet_dependencies
from lit_infoprompt.convergence import curve_summary
from lit_infoprompt.tasks.datamodule import FewShotDataModule
from lit_infoprompt.errors import InputError, Interrupted
from lit_infoprompt.model.head import ClassHead, verbalizer_init
from lit_infoprompt.hub import resolve_backbone
from lit_infoprompt.train.metrics import build_metrics
from lit_infoprompt.model.module import PromptClassifier
from lit_infoprompt.model.prompt import build_prompt, initial_prompt
from lit_infoprompt.train.preflight import resumable_config, saved_run_config
from lit_infoprompt.provenance import code_version, environment, version_of
from lit_infoprompt.train.ranks import claim_run_dir, is_global_zero, throttle_sigterm_check
from lit_infoprompt.train.rundir import forget_unstarted, keep_metrics_csv, write_json
from lit_infoprompt.tasks.templates import label_word_ids
from lit_infoprompt.train.tracking import finish_wandb, wandb_logger

log = logging.getLogger(__name__)

# Expected here, and misleading to a user: the frozen backbone stays in eval mode on purpose
# (model.dropout), and the run directory holds config.yaml/split.json before the CSV logger starts.
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")
warnings.filterwarnings("ignore", message=r".*Experiment logs directory .* exists and is not empty.*")
warnings.filterwarnings("ignore", message=r".*is smaller than the logging interval.*")  # few-shot epochs are short
# A few-shot split is a few dozen examples, encoded once: worker processes would only add their start-up time
# (data.num_workers sets them where a task's files are large).
warnings.filterwarnings("ignore", message=r".*does not have many workers.*")


def build_module(config: Config, backbone: Backbone, tokenizer, label_ids) -> PromptClassifier:
    weight, bias = backbone.output_embeddings()
    init = initial_prompt(config.prompt, backbone.word_embeddings.weight, tokenizer, label_ids, config.seed)
    head = ClassHead(*verbalizer_init(label_ids, weight, bias))
    metrics = build_metrics(config.task.metrics, config.task.labels, prefix="")
    return PromptClassifier(backbone, build_prompt(config.prompt, init, backbone.hidden_size), head, config.method, config.optim,
                            config.trainer.max_steps, metrics, config.prompt.placement, 4 * config.data.batch_size)


def build(config: Config, backbone: Backbone = None, tokenizer=None):
    """(module, datamodule, split record); pass a backbone/tokenizer to skip loading one (tests, sweeps)."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    if backbone is None:
        backbone, tokenizer = load_backbone(config.model)
    backbone.check_length(config.model.max_length, config.model.name)  # not an IndexError deep in the encoder
    datamodule = FewShotDataModule(config, tokenizer, config.prompt.length)
    split = datamodule.prepare_split()
    label_ids = label_word_ids(config.task.label_words, tokenizer, datamodule.encoder.mask_space)
    return build_module(config, backbone, tokenizer, label_ids), datamodule, split


def check_shards(config: Config, datamodule: FewShotDataModule) -> None:
    """Each process evaluates its own share of dev and test: one with no example would skip the evaluation while
    the others wait for it in the metric sync (a hang). Refuse that before anything is written."""
    world = processes(config)
    for name, rows in (("dev", datamodule.dev_rows), ("test", datamodule.test_rows)):
        if world > 1 and len(rows) < world:
            raise InputError(f"the {name} set has {len(rows)} examples for {world} processes: every process needs at "
                             f"least one; use fewer devices (trainer.devices) or more examples (data.shots)")


def make_trainer(config: Config, run_dir: Path, callbacks, loggers) -> L.Trainer:
    resolve_precision(config)  # done by run before the config is saved; here for trainers built directly (tests)
    t = config.trainer
    strategy = t.strategy
    if strategy == "ddp":  # the prompt-free cache is a buffer, identical on every rank: no re-broadcast per step
        import inspect

        from lightning.pytorch.strategies import DDPStrategy
        from torch.nn.parallel import DistributedDataParallel
        newer = "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
        strategy = DDPStrategy(**{"forward_sync_buffers" if newer else "broadcast_buffers": False})
    trainer = L.Trainer(
        max_steps=t.max_steps, val_check_interval=t.val_every, check_val_every_n_epoch=None,
        accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes, strategy=strategy,
        precision=t.precision, deterministic=t.deterministic, logger=loggers, callbacks=callbacks,
        enable_progress_bar=t.progress_bar, log_every_n_steps=min(10, t.val_every), num_sanity_val_steps=0,
        default_root_dir=str(run_dir), enable_model_summary=False,  # the parameter counts are in summary.json
        use_distributed_sampler=False,  # the datamodule shards itself: step-indexed batches, unpadded eval
        # no_grad, not inference_mode, for every evaluation: the step-0 validate would otherwise leave inference
        # tensors in metric states (MCC's confusion matrix) that fit's no_grad validation then updates in place
        inference_mode=False,
        plugins=[AtomicCheckpointIO()],
    )
    throttle_sigterm_check(trainer)
    return trainer


saved_config = saved_run_config  # a run directory's config.yaml (predict and export read runs through it)


def check_resumable(run_dir: Path, split: dict) -> Path:
    """The last checkpoint of an unfinished run (``preflight.resumable_config`` checked that) whose data is
    unchanged."""
    last = run_dir / "checkpoints" / "last.ckpt"
    saved = OmegaConf.load(run_dir / "split.json")
    if saved.checksum != split["checksum"]:
        raise InputError(f"cannot resume {run_dir}: the data changed (split checksum {split['checksum'][:12]} "
                         f"!= saved {saved.checksum[:12]})")
    return last


def resolve_precision(config: Config) -> None:
    """``trainer.precision=auto`` (the default) as a literal, before the config is saved or compared with saved
    runs: bf16-mixed on a CUDA device that supports bf16, else 32-true (so a CPU run reads 32-true, as every
    archived run does). On CUDA, float32 matmuls may use TF32 (``high``) whatever the precision."""
    cuda = uses_cuda(config.trainer.accelerator)
    if cuda:
        torch.set_float32_matmul_precision("high")
    if config.trainer.precision != "auto":
        return
    if cuda and native_bf16():
        config.trainer.precision = "bf16-mixed"
    else:
        config.trainer.precision = "32-true"
        if cuda:
            log.warning("NOTICE precision: %s has no bf16: trainer.precision=32-true (float32 matmuls in TF32)",
                        torch.cuda.get_device_name())


def native_bf16() -> bool:
    """Whether the GPU computes bf16 in hardware. ``including_emulation=False``: torch otherwise says yes for a V100
    or T4 too, whose bf16 is emulated and slower than float32, and they would default to bf16-mixed without the
    notice; a torch whose ``is_bf16_supported`` has no such argument counts native support only."""
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # the argument came with torch 2.4; before, emulation was not counted
        return bool(torch.cuda.is_bf16_supported())


def check_devices(config: Config) -> None:
    """GPUs asked for (``trainer.accelerator=gpu``, ``GPUS=N``) and fewer visible: one line before anything is
    loaded or written, rather than Lightning's traceback after the run directory exists."""
    accelerator = str(config.trainer.accelerator).lower()
    if accelerator not in ("gpu", "cuda"):
        return
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    wanted = processes(config) // max(1, config.trainer.num_nodes)
    if visible < wanted:
        build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", a CPU build")
        raise InputError(f"trainer.accelerator={accelerator} asks for {wanted} GPU(s) per machine and {visible} "
                         f"{'is' if visible == 1 else 'are'} visible here ({build}): drop GPUS (or set "
                         f"trainer.accelerator=cpu) to train on the CPU, or run where the GPUs are visible")


def run(config: Config, backbone: Backbone = None, tokenizer=None) -> dict:
    """Train, select on dev, test the best checkpoint; returns (and writes) the summary."""
    started = time.perf_counter()
    quiet_dependencies()  # Lightning's promotions, accelerator lines and internal deprecations: not the project's
    resume_dir = Path(config.resume) if config.resume else None
    if resume_dir is not None:
        config = resumable_config(resume_dir)  # finished, or nothing to resume from: one line, before loading
    check_devices(config)
    resolve_backbone(config)  # model.name=auto: roberta-large, or the fallback with a notice
    resolve_precision(config)  # trainer.precision=auto: bf16-mixed on a GPU that has it, else 32-true
    module, datamodule, split = build(config, backbone, tokenizer)
    check_shards(config, datamodule)
    if resume_dir is not None:
        run_dir, last = resume_dir, check_resumable(resume_dir, split)
        if is_global_zero(config):  # the CSV logger writes on global rank 0 only
            keep_metrics_csv(run_dir, last)
    else:
        run_dir, last = claim_run_dir(config, split), None
    try:
        return train_and_test(config, module, datamodule, split, run_dir, last, resume_dir, started)
    except (Exception, KeyboardInterrupt, SystemExit) as err:
        # Lightning answers Ctrl-C inside fit/validate/test with sys.exit(1), raised while handling the interrupt
        interrupted = isinstance(err, KeyboardInterrupt) or (
            isinstance(err, SystemExit) and isinstance(err.__context__, KeyboardInterrupt))
        trainer = module.attached_trainer()
        step = trainer.global_step if trainer is not None else 0
        line = ""
        if is_global_zero(config):
            if resume_dir is None:
                forget_unstarted(run_dir)
            if (run_dir / "checkpoints" / "last.ckpt").is_file() and not (run_dir / "summary.json").is_file():
                line = (f"{f'interrupted at step {step}' if interrupted else 'stopped'}: resume it with "
                        f"`make train RESUME={run_dir}` (python -m lit_infoprompt train resume={run_dir})")
            elif interrupted and not run_dir.exists():
                line = (f"interrupted at step {step} before the first checkpoint (one is saved at every dev "
                        f"evaluation, every {config.trainer.val_every} steps): nothing was saved, {run_dir} removed")
            if line:
                log.warning("%s", line)
        if interrupted:
            raise Interrupted(line) from None  # said: the CLI exits 130 without another line
        raise


def train_and_test(config: Config, module, datamodule, split: dict, run_dir: Path, last: Optional[Path],
                   resume_dir: Optional[Path], started: float) -> dict:
    """Fit (or continue) the run in ``run_dir``, evaluate the last step, test the best-on-dev checkpoint."""
    metric = f"val/{config.task.metric}"
    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=metric, mode="max",
                                 save_top_k=1, enable_version_counter=False)
    # ModelCheckpoint's save_last only fires when the best changed: a second, unmonitored one keeps the
    # latest evaluation's state for RESUME.
    latest = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="last", save_top_k=1,
                             enable_version_counter=False)
    curve = DevCurve(run_dir / "curve.csv", config.data.batch_size)
    loggers = [CSVLogger(save_dir=str(run_dir), name="", version="")]
    if config.logger == "wandb":
        loggers += [logger for logger in [wandb_logger(config, run_dir, split)] if logger is not None]
    callbacks = [curve, RngState(config.seed), checkpoint, latest]  # curve first: its row is saved with the checkpoint
    if config.trainer.progress_bar:
        callbacks.append(StepBar(metric))  # optimiser steps of the whole run, the last dev score
    trainer = make_trainer(config, run_dir, callbacks, loggers)
    if last is None:
        trainer.validate(module, datamodule=datamodule, verbose=False)  # step 0: the zero-shot verbalizer
    with warnings.catch_warnings():
        if last is not None:  # resume is exact (the batch stream is indexed by step): Lightning's warning is not
            warnings.filterwarnings("ignore", message=r".*dataloader is not resumable.*")
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if last else None)
    best = checkpoint.best_model_path
    if curve.rows[-1]["step"] != trainer.global_step:  # max_steps is not a multiple of val_every
        best = final_evaluation(trainer, module, datamodule, checkpoint, curve, metric)
    test = trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False)[0]
    summary = summarize(config, module, split, curve, test, trainer.global_step, time.perf_counter() - started)
    summary["run_dir"] = str(run_dir)
    if resume_dir is not None and version_of(asdict(code_version())) != version_of(asdict(config.code)):
        log.warning("resumed %s with other code (%s) than it started with", run_dir, code_version().identity)
        summary["code_resumed_with"] = asdict(code_version())
    summary["environment"] = environment(config.trainer.precision, config.trainer.accelerator)
    if trainer.is_global_zero:
        write_json(run_dir / "summary.json", summary)
    finish_wandb(loggers, summary)
    return summary


def final_evaluation(trainer, module, datamodule, checkpoint, curve, metric) -> str:
    """Evaluate the last step too; ModelCheckpoint only saves inside fit, so save a new best here. Returns the
    best checkpoint's path. The callback's record is updated through its public state API (as a restore does), so
    that the state saved in best.ckpt names the new best and its score."""
    trainer.validate(module, datamodule=datamodule, verbose=False)
    score = curve.rows[-1][metric]
    if checkpoint.best_model_score is None or score > float(checkpoint.best_model_score):
        path = str(Path(checkpoint.dirpath) / "best.ckpt")
        checkpoint.load_state_dict({**checkpoint.state_dict(), "best_model_path": path, "best_model_score": score})
        trainer.save_checkpoint(path)
    return checkpoint.best_model_path


def summarize(config: Config, module: PromptClassifier, split: dict, curve: DevCurve, test: dict, steps: int,
              seconds: float) -> dict:
    confusion = module.test_confusion_result  # summed over the ranks' test examples, in the test loop
    return {
        "task": config.task.name, "method": config.method.name, "protocol": split["protocol"],
        "shots": config.data.shots if split["protocol"] == "per_class" else None, "split_size": split["size"],
        "seed": config.seed, **({"data_seed": config.data.seed} if config.data.seed is not None else {}),
        "backbone": config.model.name, "dev_metric": config.task.metric,
        **curve_summary(curve.rows, f"val/{config.task.metric}", config.trainer.target_dev),
        **{f"test_{name}": test[f"test/{name}"] for name in config.task.metrics},
        "steps": steps, "seconds": round(seconds, 2), "train_seconds": round(curve.seconds(), 2),
        "split_checksum": split["checksum"], "params": module.parameter_counts(),
        "sizes": {"train": len(split["train_ids"]), "dev": len(split["dev_ids"]), "test": int(confusion.sum())},
        "confusion_matrix_test": confusion.tolist(),  # gold x predicted: compare's intervals over test examples
        "tied_test_examples": module.test_ties_result,
        **({"degenerate": why} if (why := degenerate(confusion.tolist(), module.test_ties_result)) else {}),
        "code": asdict(config.code), **({"backbone_notice": config.backbone_notice} if config.backbone_notice else {}),
    }

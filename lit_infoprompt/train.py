"""The composition root: config -> seed -> backbone -> data -> module -> callbacks -> logger -> trainer.

Everything that can fail on user input (model, data, template, label words) is built before the run
directory exists, so a bad setting leaves nothing half-written behind.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from lit_infoprompt.backbone import Backbone, load_backbone
from lit_infoprompt.callbacks import DevCurve
from lit_infoprompt.config import Config
from lit_infoprompt.datamodule import FewShotDataModule
from lit_infoprompt.head import ClassHead, verbalizer_init
from lit_infoprompt.metrics import build_metrics
from lit_infoprompt.module import PromptClassifier
from lit_infoprompt.prompt import build_prompt, initial_prompt
from lit_infoprompt.rundir import new_run_dir, write_json, write_start
from lit_infoprompt.templates import label_word_ids

log = logging.getLogger(__name__)

# Expected here, and misleading to a user: the frozen backbone stays in eval mode on purpose
# (model.dropout), and the run directory holds config.yaml/split.json before the CSV logger starts.
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")
warnings.filterwarnings("ignore", message=r".*Experiment logs directory .* exists and is not empty.*")
warnings.filterwarnings("ignore", message=r".*is smaller than the logging interval.*")  # few-shot epochs are short


def build_module(config: Config, backbone: Backbone, tokenizer, label_ids) -> PromptClassifier:
    weight, bias = backbone.output_embeddings()
    init = initial_prompt(config.prompt, backbone.word_embeddings.weight, tokenizer, label_ids, config.seed)
    head = ClassHead(*verbalizer_init(label_ids, weight, bias))
    metrics = build_metrics(config.task.metrics, config.task.labels, prefix="")
    return PromptClassifier(backbone, build_prompt(config.prompt, init), head, config.method, config.optim,
                            config.trainer.max_steps, metrics, config.prompt.placement, 4 * config.data.batch_size)


def build(config: Config, backbone: Backbone = None, tokenizer=None):
    """(module, datamodule, split record); pass a backbone/tokenizer to skip loading one (tests, sweeps)."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    if backbone is None:
        backbone, tokenizer = load_backbone(config.model)
    datamodule = FewShotDataModule(config, tokenizer, config.prompt.length)
    split = datamodule.prepare_split()
    label_ids = label_word_ids(config.task.label_words, tokenizer, datamodule.encoder.mask_space)
    return build_module(config, backbone, tokenizer, label_ids), datamodule, split


def make_trainer(config: Config, run_dir: Path, callbacks) -> L.Trainer:
    t = config.trainer
    return L.Trainer(
        max_steps=t.max_steps, val_check_interval=t.val_every, check_val_every_n_epoch=None,
        accelerator=t.accelerator, devices=t.devices, precision=t.precision, deterministic=t.deterministic,
        logger=CSVLogger(save_dir=str(run_dir), name="", version=""), callbacks=callbacks,
        enable_progress_bar=t.progress_bar, log_every_n_steps=min(10, t.val_every), num_sanity_val_steps=0,
        default_root_dir=str(run_dir), enable_model_summary=t.progress_bar,
    )


def run(config: Config, backbone: Backbone = None, tokenizer=None) -> dict:
    """Train, select on dev, test the best checkpoint; returns (and writes) the summary."""
    started = time.perf_counter()
    module, datamodule, split = build(config, backbone, tokenizer)
    run_dir = new_run_dir(config, split)
    write_start(run_dir, config, split)
    metric = f"val/{config.task.metric}"
    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=metric, mode="max",
                                 save_top_k=1, save_last=False, enable_version_counter=False)
    curve = DevCurve(run_dir / "curve.csv", metric, config.data.batch_size)
    trainer = make_trainer(config, run_dir, [checkpoint, curve])
    trainer.validate(module, datamodule=datamodule, verbose=False)  # step 0: the zero-shot verbalizer
    trainer.fit(module, datamodule=datamodule)
    if curve.rows[-1]["step"] != trainer.global_step:  # max_steps not a multiple of val_every
        trainer.validate(module, datamodule=datamodule, verbose=False)
        checkpoint.on_validation_end(trainer, module)
    test = trainer.test(module, datamodule=datamodule, ckpt_path=checkpoint.best_model_path, verbose=False)[0]
    summary = summarize(config, module, split, curve, test, trainer.global_step, time.perf_counter() - started)
    summary["run_dir"] = str(run_dir)
    write_json(run_dir / "summary.json", summary)
    return summary


def summarize(config: Config, module: PromptClassifier, split: dict, curve: DevCurve, test: dict, steps: int,
              seconds: float) -> dict:
    best, metric = curve.best, f"val/{config.task.metric}"
    return {
        "task": config.task.name, "method": config.method.name, "protocol": split["protocol"],
        "shots": config.data.shots if split["protocol"] == "per_class" else None, "split_size": split["size"],
        "seed": config.seed, "backbone": config.model.name, "dev_metric": config.task.metric,
        "dev_step0": curve.rows[0][metric], "best_dev": best[metric], "best_step": best["step"],
        **{f"test_{name}": test[f"test/{name}"] for name in config.task.metrics},
        "steps": steps, "seconds": round(seconds, 2), "split_checksum": split["checksum"],
        "params": module.parameter_counts(),
        "sizes": {"train": len(split["train_ids"]), "dev": len(split["dev_ids"])},
    }

"""Few-shot DataModule: official files -> K-per-class split -> token ids, padded per batch.

Everything is tokenised once in ``prepare_split`` (called by the composition root before the Trainer
exists, so bad data fails before anything is written). Evaluation batches are sorted by length, which
cuts padding; metrics do not depend on order.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

import lightning as L
import torch
from torch.utils.data import DataLoader

from lit_infoprompt.tasks.batching import StepBatchSampler, eval_shard
from lit_infoprompt.config import Config
from lit_infoprompt.errors import InputError
from lit_infoprompt.tasks.sampling import sample_budget, sample_per_class, split_record
from lit_infoprompt.tasks.sources import Example, read_examples, resolve_files
from lit_infoprompt.tasks.templates import TemplateEncoder

log = logging.getLogger(__name__)


def encode_examples(examples: List[Example], encoder: TemplateEncoder) -> List[Dict[str, Any]]:
    rows = []
    for example in examples:
        enc = encoder.encode(example.fields)
        rows.append({"input_ids": enc.input_ids, "mask_pos": enc.mask_pos, "label": example.label,
                     "truncated": enc.truncated})
    return rows


class Collator:
    """Pads a list of encoded rows to the longest in the batch."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: List[Dict[str, Any]]) -> Dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row["input_ids"])] = torch.tensor(row["input_ids"])
            attention[i, : len(row["input_ids"])] = 1
        return {"input_ids": ids, "attention_mask": attention,
                "mask_pos": torch.tensor([r["mask_pos"] for r in rows]),
                "index": torch.tensor([r["index"] for r in rows]),
                "labels": torch.tensor([r["label"] for r in rows])}


class FewShotDataModule(L.LightningDataModule):
    def __init__(self, config: Config, tokenizer, prompt_slots: int):
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        self.encoder = TemplateEncoder(config.task.template, tokenizer, config.model.max_length, prompt_slots)
        self.collate = Collator(tokenizer.pad_token_id)
        self.split: Optional[dict] = None
        self.train_rows: List[Dict[str, Any]] = []
        self.dev_rows: List[Dict[str, Any]] = []
        self.test_rows: List[Dict[str, Any]] = []

    def prepare_split(self) -> dict:
        """Read, sample and tokenise; returns the split record (ids + checksum) for the run directory."""
        task, data = self.config.task, self.config.data
        seed = self.config.seed if data.seed is None else data.seed  # the split's seed (data.seed: apart from training)
        files = resolve_files(task, data)
        fields = self.encoder.fields
        pool = read_examples(files.train, task, fields)
        test = read_examples(files.test, task, fields)
        if files.dev is not None:  # fixed split files: train and dev as given
            protocol, size = "fixed", len(pool)
            if data.protocol != "fixed":
                log.warning("%s is missing: using the fixed split files %s and %s (data.protocol=fixed)",
                            Path(data.dir or data.cache_dir) / task.folder / task.train_file, files.train, files.dev)
            train, dev, warnings = pool, read_examples(files.dev, task, fields), []
        else:
            protocol = data.protocol
            size = data.shots if protocol == "per_class" else data.budget
            sample = sample_per_class if protocol == "per_class" else sample_budget
            split = sample([e.label for e in pool], task.labels, size, seed)
            train, dev, warnings = [pool[i] for i in split.train], [pool[i] for i in split.dev], split.warnings
        for warning in warnings:
            log.warning("few-shot split: %s", warning)
        if not dev:
            raise InputError(f"no dev examples left: every class of {files.train} has at most {size} examples")
        self.train_rows = encode_examples(train, self.encoder)
        self.dev_rows = encode_examples(dev, self.encoder)
        self.test_rows = encode_examples(test, self.encoder)
        for index, row in enumerate(self.train_rows + self.dev_rows + self.test_rows):
            row["index"] = index  # train rows first: 0..len(train)-1 (the prompt-free cache is indexed by it)
        paths = {"train": files.train, "test": files.test, **({"dev": files.dev} if files.dev else {})}
        self.split = split_record(task.name, protocol, size, seed, paths, [e.id for e in train], [e.id for e in dev])
        self.split["warnings"] = warnings
        self.split["truncated"] = {name: sum(r["truncated"] for r in rows) for name, rows in
                                   (("train", self.train_rows), ("dev", self.dev_rows), ("test", self.test_rows))}
        if any(self.split["truncated"].values()):
            log.warning("truncated to model.max_length=%d: %s examples", self.config.model.max_length,
                        self.split["truncated"])
        return self.split

    @property
    def cache_identity(self) -> tuple:
        """What the prompt-free states depend on besides the token ids."""
        return self.config.model.name, self.config.task.template, self.config.model.max_length

    def rows(self, all_splits: bool = False) -> List[Dict[str, Any]]:
        """Rows in index order: train only, or train + dev + test."""
        return self.train_rows + (self.dev_rows + self.test_rows if all_splits else [])

    def _placement(self) -> tuple:
        """(rank, world size, global step) from the attached Trainer; (0, 1, 0) without one."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1, 0
        return trainer.global_rank, trainer.world_size, trainer.global_step

    def train_dataloader(self) -> DataLoader:
        rank, world, step = self._placement()  # step > 0 when resuming: continue the same stream
        sampler = StepBatchSampler(len(self.train_rows), self.config.data.batch_size, self.config.trainer.max_steps,
                                   self.config.seed, start_step=step, rank=rank, world_size=world)
        return DataLoader(self.train_rows, batch_sampler=sampler, collate_fn=self.collate,
                          num_workers=self.config.data.num_workers)

    def _eval_loader(self, rows) -> DataLoader:
        rank, world, _ = self._placement()
        rows = sorted(rows, key=lambda r: len(r["input_ids"]))  # length-bucketed: less padding
        rows = [rows[i] for i in eval_shard(len(rows), rank, world)]
        return DataLoader(rows, batch_size=self.config.data.eval_batch_size, shuffle=False,
                          collate_fn=self.collate, num_workers=self.config.data.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.dev_rows)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_rows)

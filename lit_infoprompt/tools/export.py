"""``export-peft``: a trained static prefix prompt as a PEFT prompt-tuning adapter, plus the class head.

PEFT puts its virtual tokens before everything, the first special token (``<s>`` in RoBERTa, ``[CLS]`` in BERT)
included; ours sit right after it. The adapter therefore holds n + 1 virtual tokens, the frozen first-token embedding
followed by P, and callers feed the input ids **without** their leading special token: the encoder then sees
exactly our sequence [E(<s>), P, x..., </s>]. The ``<mask>`` state is at (index of <mask> in the ids without the
first token) + n + 1. ``head.safetensors`` holds the class head: ``head.vectors`` (C x d) and ``head.bias`` (C), and
for InfoPrompt methods the bottleneck ``bottleneck.*`` (``head_config.json`` lists every tensor with its shape and
says how to apply them); ``Classifier.load(<export>)`` (``tools.predict``) loads it back.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from omegaconf import OmegaConf

from lit_infoprompt.errors import InputError


def trainable_state(run_dir: Path) -> dict:
    for name in ("best.ckpt", "last.ckpt"):
        path = run_dir / "checkpoints" / name
        if path.is_file():
            return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    raise InputError(f"{run_dir}: no checkpoints/best.ckpt or last.ckpt to export")


def usage(first_token: str) -> str:
    """How to apply the export, in the backbone family's own first special token (``<s>``, ``[CLS]``)."""
    return (f"feed input ids without the leading {first_token}; h = last_hidden_state[mask index + mask_offset]; "
            "r = g(h) (the frozen MLM transform) if mlm_transform else h; if bottleneck: "
            "r = bottleneck.out(bottleneck.mu(r)), plus r itself if bottleneck_form is residual; "
            "logits = r @ head.vectors.T + head.bias")


def export_peft(run_dir: str, out_dir: str) -> Path:
    from peft import PromptTuningConfig, TaskType
    from safetensors.torch import save_file

    from lit_infoprompt.model.backbone import load_backbone
    from lit_infoprompt.train.runner import saved_config

    run_path, out = Path(run_dir), Path(out_dir)
    config = saved_config(run_path)
    if config.prompt.placement != "prefix" or config.prompt.kind != "static":
        raise InputError(f"export-peft needs a static prefix prompt; this run has prompt.placement="
                         f"{config.prompt.placement}, prompt.kind={config.prompt.kind}")
    state = trainable_state(run_path)
    backbone, tokenizer = load_backbone(config.model)
    cls_row = backbone.word_embeddings.weight.detach()[tokenizer.cls_token_id].float()
    virtual = torch.cat([cls_row.unsqueeze(0), state["prompt.weight"].float()])  # (n+1, d)
    hf = backbone.model.config
    out.mkdir(parents=True, exist_ok=True)
    PromptTuningConfig(task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=virtual.shape[0],
                       token_dim=virtual.shape[1], num_transformer_submodules=1,
                       num_attention_heads=hf.num_attention_heads, num_layers=hf.num_hidden_layers,
                       base_model_name_or_path=config.model.name).save_pretrained(str(out))
    save_file({"prompt_embeddings": virtual.contiguous()}, str(out / "adapter_model.safetensors"))
    head = {k: v.float().contiguous() for k, v in state.items() if k.startswith(("head.", "bottleneck."))}
    save_file(head, str(out / "head.safetensors"))
    (out / "head_config.json").write_text(json.dumps({
        "labels": config.task.labels, "label_words": config.task.label_words, "template": config.task.template,
        "method": config.method.name, "mlm_transform": backbone.has_mlm_head,
        "bottleneck": config.method.bottleneck, "prompt_length": config.prompt.length,
        "bottleneck_form": config.method.bottleneck_form if config.method.bottleneck else None,
        "mask_offset": config.prompt.length + 1,
        "tensors": {k: list(t.shape) for k, t in sorted(head.items())},
        "usage": usage(tokenizer.cls_token),
    }, indent=2, default=str) + "\n")
    OmegaConf.save(OmegaConf.load(run_path / "config.yaml"), out / "run_config.yaml")
    return out

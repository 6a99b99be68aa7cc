"""The PEFT export: PEFT's own loader, on the tiny model, gives the project's logits."""

import json

import pytest
import torch

from conftest import tiny_overrides
from lit_infoprompt.model.backbone import load_backbone
from lit_infoprompt.config import load_config
from lit_infoprompt.errors import InputError
from lit_infoprompt.tools.export import export_peft
from lit_infoprompt.train.runner import build, run


def trained_run(roberta_dir, tmp_path, *extra):
    config = load_config(tiny_overrides(roberta_dir, tmp_path / "runs", *extra))
    return config, run(config)


@pytest.mark.parametrize("extra", [(), ("method=prompt_tuning_bottleneck", "method.bottleneck_form=residual"),
                                   ("method=prompt_tuning_bottleneck",)], ids=["prompt", "residual", "replace"])
def test_peft_adapter_reproduces_the_project_logits(roberta_dir, tmp_path, extra):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModel

    config, summary = trained_run(roberta_dir, tmp_path, *extra)
    out = export_peft(summary["run_dir"], tmp_path / "adapter")
    assert json.loads((out / "adapter_config.json").read_text())["peft_type"] == "PROMPT_TUNING"

    # The project's logits with the exported (best) checkpoint.
    module, datamodule, _ = build(config)
    state = torch.load(f"{summary['run_dir']}/checkpoints/best.ckpt", weights_only=False)
    module.on_load_checkpoint(state)
    module.load_state_dict(state["state_dict"])
    module.eval()
    batch = next(iter(datamodule.test_dataloader()))
    with torch.no_grad():
        ours = module(batch)

    # PEFT: the adapter on the bare encoder, input ids without <s>, then the exported head.
    encoder = PeftModel.from_pretrained(AutoModel.from_pretrained(roberta_dir), str(out)).eval()
    head = load_file(str(out / "head.safetensors"))
    meta = json.loads((out / "head_config.json").read_text())
    backbone, _ = load_backbone(config.model)
    with torch.no_grad():
        hidden = encoder(input_ids=batch["input_ids"][:, 1:], attention_mask=batch["attention_mask"][:, 1:]
                         ).last_hidden_state
        rows = torch.arange(len(batch["labels"]))
        h = hidden[rows, batch["mask_pos"] - 1 + meta["mask_offset"]]
        r = backbone.head_input(h)
        if meta["bottleneck"]:  # as head_config.json's usage says
            u = (r @ head["bottleneck.mu.weight"].T + head["bottleneck.mu.bias"]) @ head["bottleneck.out.weight"].T
            u = u + head["bottleneck.out.bias"]
            r = r + u if meta["bottleneck_form"] == "residual" else u
        theirs = r @ head["head.vectors"].T + head["head.bias"]
    torch.testing.assert_close(theirs, ours, rtol=1e-4, atol=1e-4)


def test_export_refuses_prompts_peft_cannot_hold(roberta_dir, tmp_path):
    _, summary = trained_run(roberta_dir, tmp_path, "prompt.placement=template", "trainer.max_steps=2",
                             "trainer.val_every=2")
    with pytest.raises(InputError, match="export-peft needs a static prefix prompt"):
        export_peft(summary["run_dir"], tmp_path / "adapter")

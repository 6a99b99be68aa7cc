"""Config composition: overrides land in the dataclasses; unknown keys and bad values fail naming the key."""

import pytest

from lit_infoprompt.config import Config, DataConfig, load_config, to_yaml
from lit_infoprompt.errors import InputError


def test_defaults_compose_task_and_method_files():
    config = load_config([])
    assert isinstance(config, Config) and isinstance(config.data, DataConfig)
    assert config.task.name == "cb" and config.method.name == "prompt_tuning"
    assert config.task.labels == ["entailment", "contradiction", "neutral"]
    assert config.task.template.count("<mask>") == 1


def test_overrides_are_typed():
    config = load_config(["data.shots=8", "seed=21", "optim.prompt_lr=0.3", "model.dropout=true"])
    assert (config.data.shots, config.seed, config.optim.prompt_lr, config.model.dropout) == (8, 21, 0.3, True)


@pytest.mark.parametrize("override, named", [
    ("trainer.max_stepz=3", "trainer.max_stepz"),
    ("nosuchsection.key=1", "nosuchsection"),
])
def test_unknown_key_names_the_key(override, named):
    with pytest.raises(InputError, match=named.replace(".", r"\.")):
        load_config([override])


@pytest.mark.parametrize("override, message", [
    ("data.shots=many", "data.shots"),
    ("data.shots=0", "data.shots must be >= 1"),
    ("prompt.init=zeros", "prompt.init=zeros is not one of"),
    ("task.template=no mask here", "exactly one <mask>"),
    ("task.label_words=[yes]", "task.labels has 3 entries but task.label_words has 1"),
    ("optim.warmup_ratio=1.5", "optim.warmup_ratio"),
    ("shots", "is not key=value"),
])
def test_bad_values_fail_with_the_key(override, message):
    with pytest.raises(InputError, match=message):
        load_config([override])


def test_unknown_task_lists_known_tasks():
    with pytest.raises(InputError, match=r"unknown task 'mnli' \(known: .*cb"):
        load_config(["task=mnli"])


def test_resolved_config_round_trips_through_yaml(tmp_path):
    config = load_config(["data.shots=4", "seed=87"])
    path = tmp_path / "config.yaml"
    path.write_text(to_yaml(config))
    from omegaconf import OmegaConf
    again = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(path)))
    assert again == config

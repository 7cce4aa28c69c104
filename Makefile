# DSG17 is_listened pipeline. The Makefile is the DAG: every step is a real file target,
# so Make's timestamps do the caching and a new file in data/raw rebuilds exactly what
# depends on it. Verbs (features, train, submit, ...) are the only phony targets.
#
#   make features train submit    build everything (sets up .venv, demo data if data/raw is empty)
#   make test                     run the test suite
#   make                          list the targets

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_OK := $(VENV)/.requirements.installed
DEMO_USERS ?= 2000

RAW_TRAIN := data/raw/train.csv
RAW_TEST := data/raw/test.csv
TRAIN_PQ := data/interim/train.parquet
TEST_PQ := data/interim/test.parquet
SUMMARY := data/interim/data_summary.json
FEAT_PARAMS := data/processed/feature_params.json
EX_TRAIN := data/processed/examples_train.parquet
EX_TEST := data/processed/examples_test.parquet
FEAT := data/processed/features
ART := models/artifacts
MODEL_PARAMS := $(ART)/model_params.json
SELECT_PARAMS := $(ART)/select_params.json
SELECTION := $(ART)/selection.json
WINNER := $(ART)/winner.json
ABLATION := reports/ablation.json
LATEST := submissions/latest.csv

GROUPS := time media user item user_item sequence cf content demographics
TRAIN_FEATS := $(GROUPS:%=$(FEAT)/train/%.parquet)
TEST_FEATS := $(GROUPS:%=$(FEAT)/test/%.parquet)
# Shared feature code: a change here rebuilds every group; a change to features/<group>.py only that group.
FEAT_CORE := features/__init__.py features/asof.py features/history.py pipeline/build_features.py $(FEAT_PARAMS)
CONTRACT := pipeline/data/contract.py core/schema.py pipeline/data/ingest.py
MODEL_CODE := $(wildcard models/*.py) pipeline/data/dataset.py $(MODEL_PARAMS)
REPORT_CODE := $(wildcard pipeline/report/*.py pipeline/report/*/*.py pipeline/report/templates/*)
STAMPS := features=$(FEAT_PARAMS) models=$(MODEL_PARAMS) select=$(SELECT_PARAMS)

# Idle OpenMP threads sleep instead of spinning (2-thread fits were up to 30x slower on a busy machine).
export OMP_WAIT_POLICY ?= PASSIVE

# Settings stamps are refreshed while the Makefile is read, before Make compares
# timestamps: each file is rewritten only when a value (or its environment override,
# e.g. ROUNDS=3) changed, so `make -n` and the real run agree on what is out of date.
ifneq ($(wildcard $(VENV_OK)),)
ifneq ($(filter-out help setup test lint format clean bench demo-data,$(MAKECMDGOALS)),)
_stamp_log := $(shell $(PY) -m pipeline.stamp $(STAMPS) 2>&1 || echo __stamp_failed__)
ifneq ($(findstring __stamp_failed__,$(_stamp_log)),)
$(error $(strip $(subst __stamp_failed__,,$(_stamp_log))))
endif
$(if $(_stamp_log),$(info $(_stamp_log)))
endif
endif

.PHONY: help setup demo-data features select train submit evaluate report bench test lint format clean

help: ## list the targets
	@echo "DSG17 is_listened pipeline. Usual run: make features train submit   (then: make evaluate)"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Settings (environment): SEED=42 ROUNDS=5 SESSION_GAP_MINUTES=10 OPTUNA_MAX_TRIALS=20 OPTUNA_SECONDS=300 MODEL=<name> DEMO_USERS=2000"

# --- environment -----------------------------------------------------------------------
# The stamp is written only after a complete install, so an interrupted or half-built
# .venv has no stamp and is rebuilt from scratch; a changed requirements.txt does too.
$(VENV_OK): requirements.txt
	@if [ -x $(PY) ] && cmp -s requirements.txt $@ && $(PY) -c "import lightgbm, sklearn, pandas" 2>/dev/null; then \
		touch $@; \
	else \
		echo "==> Creating $(VENV) from requirements.txt (first run only; a few minutes)"; \
		rm -rf $(VENV); \
		$(PYTHON) -m venv $(VENV); \
		$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt; \
		cp requirements.txt $@; \
	fi

setup: $(VENV_OK) ## create or refresh .venv from the pinned requirements.txt

# --- data ------------------------------------------------------------------------------
# With no train.csv/test.csv in data/raw, the demo generator writes a DSG17-shaped pair.
# It never writes over a file of the user's: with only one of the two present it stops.
$(RAW_TRAIN) $(RAW_TEST) &: | $(VENV_OK)
	@if [ -e $(RAW_TRAIN) ] || [ -e $(RAW_TEST) ]; then \
		echo "ERROR: data/raw needs both train.csv and test.csv; only one is there. Add the other (or remove it to use demo data)." >&2; \
		exit 2; \
	fi
	@echo "==> data/raw is empty: building demo data ($(DEMO_USERS) users). Put your own train.csv/test.csv there to use real data."
	$(PY) -m pipeline.data.demo --users $(DEMO_USERS)

demo-data: | $(VENV_OK) ## (re)build demo data in data/raw (DEMO_USERS=19918 for full size); refuses to touch your own files
	$(PY) -m pipeline.data.demo --users $(DEMO_USERS) --replace-demo

$(TRAIN_PQ): $(RAW_TRAIN) $(CONTRACT) | $(VENV_OK)
	$(PY) -m pipeline.data.ingest --split train

$(TEST_PQ): $(RAW_TEST) $(CONTRACT) | $(VENV_OK)
	$(PY) -m pipeline.data.ingest --split test

$(SUMMARY): $(TRAIN_PQ) $(TEST_PQ) $(CONTRACT)
	$(PY) -m pipeline.data.ingest --summary

# --- features --------------------------------------------------------------------------
# On a fresh clone (no .venv yet while the Makefile is read) the stamps are written here.
$(FEAT_PARAMS) $(MODEL_PARAMS) $(SELECT_PARAMS) &: | $(VENV_OK)
	@$(PY) -m pipeline.stamp $(STAMPS)

$(EX_TRAIN): $(TRAIN_PQ) $(FEAT_PARAMS) pipeline/data/examples.py features/history.py
	$(PY) -m pipeline.data.examples --split train

$(EX_TEST): $(TEST_PQ) pipeline/data/examples.py
	$(PY) -m pipeline.data.examples --split test

$(FEAT)/train/%.parquet: features/%.py $(FEAT_CORE) $(TRAIN_PQ) $(EX_TRAIN)
	$(PY) -m pipeline.build_features --group $* --split train

$(FEAT)/test/%.parquet: features/%.py $(FEAT_CORE) $(TRAIN_PQ) $(EX_TEST)
	$(PY) -m pipeline.build_features --group $* --split test

features: $(SUMMARY) $(TRAIN_FEATS) $(TEST_FEATS) ## validate data/raw, build the examples and every feature group

# --- models ----------------------------------------------------------------------------
$(SELECTION): $(TRAIN_FEATS) $(EX_TRAIN) pipeline/select.py pipeline/data/dataset.py models/registry.py $(SELECT_PARAMS)
	$(PY) -m pipeline.select

select: $(SELECTION) ## random-forest feature selection (run by train)

# The ablation uses the registry's fixed-parameter LightGBM: Optuna budgets do not re-run it.
$(ABLATION): $(TRAIN_FEATS) $(EX_TRAIN) pipeline/evaluate.py pipeline/data/dataset.py models/registry.py
	$(PY) -m pipeline.evaluate --ablation

# `make train` always runs a new bake-off (and continues the Optuna study); the file rule
# below builds the winner only when `make submit` needs it and it is missing or stale.
# pipeline.train writes the report itself, before it commits the run (winner.json last).
train: $(SELECTION) $(ABLATION) $(SUMMARY) ## model bake-off + Optuna tuning (continues the study), then the HTML report
	$(PY) -m pipeline.train

# The data summary is only read by the report: order-only, so a new test.csv does not retrain.
$(WINNER): $(SELECTION) $(ABLATION) pipeline/train.py $(REPORT_CODE) $(MODEL_CODE) | $(SUMMARY)
	$(PY) -m pipeline.train

report: $(WINNER) ## rewrite reports/model_ranking.html from the saved run files
	$(PY) -m pipeline.report

submit: $(WINNER) $(TEST_FEATS) ## write submissions/submission_<model>_<time>.csv and latest.csv (MODEL=<name> for another model)
	$(PY) -m pipeline.submit

$(LATEST): $(WINNER) $(TEST_FEATS)
	$(PY) -m pipeline.submit

evaluate: $(LATEST) $(ABLATION) ## print validation AUC, the group ablation and, on demo data, the test and oracle AUC
	$(PY) -m pipeline.evaluate

# --- checks ----------------------------------------------------------------------------
bench: | $(VENV_OK) ## time every stage on full-size demo data (scratch folder) -> reports/bench.json
	$(PY) -m tools.bench

test: | $(VENV_OK) ## run the test suite
	$(PY) -m pytest -q

lint: | $(VENV_OK) ## ruff lint and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: | $(VENV_OK) ## ruff format the code
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean: ## remove generated data, features and model artifacts (never data/raw files of yours, submissions or runs)
	@$(or $(wildcard $(PY)),$(PYTHON)) -m tools.clean

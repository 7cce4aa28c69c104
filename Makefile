# DSG17 is_listened pipeline. The Makefile is the DAG: every step is a real file target,
# so Make's timestamps do the caching and a new file in data/raw rebuilds exactly what
# depends on it. Verbs (features, train, submit, ...) are the only phony targets.
#
#   make features train submit    build everything (sets up .venv, demo data if data/raw is empty)
#   make test                     the fast test suite (make test-all: everything)
#   make                          list the targets and settings

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules
# Two cores: independent targets (feature groups, the test side beside the train side, the
# ablation beside the bake-off when both are asked for) run side by side; every stage is seeded and
# writes its own files, so the bytes do not depend on the order. Output is not synchronised
# (make's -O holds a stage's log back until the stage ends): each log line names its stage.
# JOBS=1 make ... runs one at a time.
JOBS ?= 2
MAKEFLAGS += -j$(JOBS)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_OK := $(VENV)/.installed
DEMO_USERS ?= 2000

# Paths, feature groups and settings stamps come from the code (core/config.py,
# features/__init__.py, core/settings.py), read once while Make parses; nothing is
# written, so `make -n` writes nothing. Each stamp's name carries the hash of its
# settings: a changed value (e.g. ROUNDS=3 make features) names a stamp that does not
# exist yet, and exactly the stages that read that kind of setting run again.
comma := ,
_vars := $(shell $(PYTHON) -m pipeline.makevars 2>&1 || echo __failed__)
ifneq ($(findstring __failed__,$(_vars)),)
ifneq ($(filter-out help clean,$(or $(MAKECMDGOALS),help)),)
$(error $(strip $(subst __failed__,,$(_vars))))
endif
else
$(foreach kv,$(_vars),$(eval $(kv)))
endif
GROUPS := $(subst $(comma), ,$(GROUPS))
TRAIN_FEATS := $(GROUPS:%=$(FEAT)/train/%.parquet)
TEST_FEATS := $(GROUPS:%=$(FEAT)/test/%.parquet)
NOW_FEATS := $(GROUPS:%=$(FEAT)/now/%.parquet)
ALL_STAMPS := $(FEATURES_STAMP) $(GROUPS_STAMP) $(SELECT_STAMP) $(ABLATION_STAMP) $(TUNE_STAMP) $(MODELS_STAMP) $(SUBMIT_STAMP)

# Code each step depends on: a change here re-runs that step (and what follows).
CORE_CODE := $(wildcard core/*.py)
CONTRACT := pipeline/data/contract.py pipeline/data/ingest.py core/schema.py
# Shared feature code (the as-of primitive, History, the snapshot grid, the solver): a change here
# rebuilds every group; a change to features/<group>.py only that group.
FEAT_CORE := features/__init__.py features/asof.py features/history.py features/snapshots.py features/lbfgs.py \
	pipeline/build_features.py $(FEATURES_STAMP)
MATRIX_CODE := pipeline/data/dataset.py
MODEL_CODE := $(wildcard models/*.py) $(MATRIX_CODE) pipeline/fitcache.py pipeline/runstore.py pipeline/scoring.py
REPORT_CODE := $(wildcard pipeline/report/*.py pipeline/report/*/*.py pipeline/report/templates/*)

# Idle OpenMP threads sleep instead of spinning (2-thread fits were up to 30x slower on a busy machine).
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: help setup lock demo-data features select tune ablation train report submit recommend similar recommend-eval \
	evaluate bench test test-all lint format clean

help: ## list the targets and settings
	@echo "DSG17 is_listened pipeline. Usual run: make features train submit   (then: make evaluate)"
	@echo "Quick loop: MODELS=lightgbm make train submit   (any comma-separated subset of the bake-off)"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Settings (environment variables, e.g. SEED=7 ROUNDS=3 make features train submit):"
	@$(PYTHON) -m core.settings --help-table
	@echo "  DEMO_USERS=$(DEMO_USERS)                      [make] users of the generated demo data (19918: full size)"
	@echo "  JOBS=$(JOBS)                             [make] targets Make runs side by side (1: one at a time; the bytes are the same)"

# --- environment -----------------------------------------------------------------------
# requirements.txt is the lock file (pip-compile of pyproject.toml, every pin with the
# package that needs it). The stamp is written only after a complete install, so an
# interrupted or half-built .venv has no stamp and is rebuilt from scratch.
$(VENV_OK): requirements.txt pyproject.toml
	@if [ -x $(PY) ] && cmp -s requirements.txt $@ && $(PY) -c "import lightgbm, sklearn, pandas, pipeline" 2>/dev/null; then \
		touch $@; \
	else \
		echo "==> Creating $(VENV) from requirements.txt (first run only; a few minutes)"; \
		rm -rf $(VENV); \
		$(PYTHON) -m venv $(VENV); \
		$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt; \
		$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .; \
		cp requirements.txt $@; \
	fi

setup: $(VENV_OK) ## create or refresh .venv from the lock file requirements.txt (and install the project)

lock: | $(VENV_OK) ## re-pin requirements.txt from pyproject.toml's ranges with pip-compile (keeps pins that still fit)
	$(PY) -m piptools compile --quiet --extra test --extra dev --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.txt pyproject.toml

# --- settings stamps -------------------------------------------------------------------
$(ALL_STAMPS):
	@$(PYTHON) -m pipeline.makevars --write-stamp $@

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
	$(PY) -m pipeline.data.ingest --split train --src $< --out $@

$(TEST_PQ): $(RAW_TEST) $(CONTRACT) | $(VENV_OK)
	$(PY) -m pipeline.data.ingest --split test --src $< --out $@

$(SUMMARY): $(TRAIN_PQ) $(TEST_PQ) $(CONTRACT)
	$(PY) -m pipeline.data.ingest --summary --train $(TRAIN_PQ) --test $(TEST_PQ) --out $@

# --- features --------------------------------------------------------------------------
$(EX_TRAIN): $(TRAIN_PQ) $(FEATURES_STAMP) pipeline/data/examples.py features/history.py
	$(PY) -m pipeline.data.examples --split train --train $< --out $@

$(EX_TEST): $(TEST_PQ) pipeline/data/examples.py
	$(PY) -m pipeline.data.examples --split test --test $< --out $@

$(FEAT)/train/%.parquet: features/%.py $(FEAT_CORE) $(TRAIN_PQ) $(EX_TRAIN)
	$(PY) -m pipeline.build_features --group $* --split train --history $(TRAIN_PQ) --examples $(EX_TRAIN) --out $@

# The report's sample users' candidates at "now" (pipeline/pool.py): their features are
# computed in the test rows' pass (one rule, two outputs), not in a pass of their own.
$(EX_NOW): $(TRAIN_PQ) $(TEST_PQ) $(FEATURES_STAMP) pipeline/pool.py features/colisten.py
	$(PY) -m pipeline.pool --history $(TRAIN_PQ) --test $(TEST_PQ) --out $@

$(FEAT)/test/%.parquet $(FEAT)/now/%.parquet: features/%.py $(FEAT_CORE) $(TRAIN_PQ) $(EX_TEST) $(EX_NOW)
	$(PY) -m pipeline.build_features --group $* --split test --history $(TRAIN_PQ) --examples $(EX_TEST) \
		--out $(FEAT)/test/$*.parquet --now-examples $(EX_NOW) --now-out $(FEAT)/now/$*.parquet

# A group split over two modules: the second one's changes rebuild it too.
$(FEAT)/train/fm.parquet $(FEAT)/test/fm.parquet $(FEAT)/now/fm.parquet: features/fm_data.py
# The fm snapshots are a function of the history (kept in data/processed/cache): the test build
# reads the ones the train build fit instead of fitting them again, so it waits for it.
$(FEAT)/test/fm.parquet $(FEAT)/now/fm.parquet: | $(FEAT)/train/fm.parquet
$(FEAT)/train/neighbours.parquet $(FEAT)/test/neighbours.parquet $(FEAT)/now/neighbours.parquet: features/colisten.py

# The recommender's state at now (pipeline/recommend_state.py, features/now.py): what a request needs
# of everyone's plays, so `make recommend` reads one user's plays instead of passing the groups
# over the whole history.  A function of the history, the test file's last time, the groups and the
# feature code; it reads the snapshots the fm builds fit (so it comes after them, unless
# DROP_GROUPS=fm leaves fm out).
$(RECO_STATE): $(TRAIN_PQ) $(TEST_PQ) $(FEATURES_STAMP) $(GROUPS_STAMP) $(wildcard features/*.py) pipeline/pool.py \
		pipeline/recommend_state.py | $(filter $(FEAT)/test/fm.parquet,$(TEST_FEATS))
	$(PY) -m pipeline.recommend_state --history $(TRAIN_PQ) --test $(TEST_PQ) --out-dir $(dir $@)

features: $(SUMMARY) $(TRAIN_FEATS) $(TEST_FEATS) $(RECO_STATE) ## validate data/raw, build the examples, every feature group and the recommender's state

# --- models ----------------------------------------------------------------------------
$(SELECTION): $(TRAIN_FEATS) $(EX_TRAIN) $(GROUPS_STAMP) $(SELECT_STAMP) pipeline/select.py $(MATRIX_CODE) models/estimators.py
	$(PY) -m pipeline.select --out-dir $(ART)

select: $(SELECTION) ## random-forest feature selection (run by train)

# Tuning is an explicit request: `make tune` adds OPTUNA_MAX_TRIALS trials to the study on the
# current features and writes tuned.json; the next `make train` refits what uses it (the tuned
# LightGBM and the stack).  Without a study on these features the bake-off has no tuned LightGBM.
tune: $(SELECTION) $(TUNE_STAMP) ## add OPTUNA_MAX_TRIALS Optuna trials to the LightGBM study (then make train uses the best)
	$(PY) -m pipeline.tune --add

# The ablation uses the registry's fixed-parameter LightGBM: model budgets and Optuna do not re-run it.
# Once a report exists it is re-rendered with the new table (the report never refits anything).
$(ABLATION): $(TRAIN_FEATS) $(EX_TRAIN) $(GROUPS_STAMP) $(SELECTION) $(ABLATION_STAMP) pipeline/ablation.py $(MATRIX_CODE)
	$(PY) -m pipeline.ablation --out $@
	if [ -f $(REPORT) ]; then $(PY) -m pipeline.report --out $(REPORT); fi

ablation: $(ABLATION) ## drop-one-group ablation of the feature groups (on request: train does not wait for it)

# A run fits only what changed since the last one (models/artifacts/cache); the data
# summary is only read by the report: order-only, so a new test.csv does not retrain.
# tuned.json, once `make tune` has written it, is an input like any other.
$(WINNER): $(SELECTION) $(wildcard $(TUNED)) $(MODELS_STAMP) pipeline/train.py $(MODEL_CODE) | $(SUMMARY)
	$(PY) -m pipeline.train

# The ablation is a diagnostic on request (make ablation, make evaluate), as tuning and the
# recommender's evaluation are: it cost a core for ~100 s beside the bake-off at every size
# (11 LightGBM fits).  The report shows the last one, marked stale when the features changed
# since, and says how to get one when there is none.
$(REPORT): $(WINNER) $(RECO) $(REPORT_CODE) | $(SUMMARY)
	$(PY) -m pipeline.report --out $@

RECO_CODE := pipeline/recommend.py pipeline/recommend_why.py pipeline/pool.py
$(RECO): $(WINNER) $(EX_NOW) $(NOW_FEATS) $(RECO_CODE)
	$(PY) -m pipeline.recommend --samples --out $@

train: $(REPORT) ## model bake-off (MODELS=a,b for a subset), refit of the winner, HTML report

report: $(REPORT) ## write reports/model_ranking.html from the saved run files

$(LATEST): $(WINNER) $(TEST_FEATS) $(EX_TEST) $(SUBMIT_STAMP) pipeline/submit.py
	$(PY) -m pipeline.submit

submit: $(LATEST) ## write submissions/submission_<model>_<time>.csv and latest.csv (MODEL=<name> for another model)

# --- recommendations --------------------------------------------------------------------
N ?= 10
recommend: $(RECO_STATE) | $(WINNER) ## top N tracks for a user: make recommend USER=<user_id>[,<id>...] [N=10] [INCLUDE_HEARD=1] [AGE=24 GENDER=1]
	$(PY) -m pipeline.recommend --user "$(USER)" --n "$(N)" --age "$(AGE)" --gender "$(GENDER)" \
		$(if $(filter 1 yes true,$(INCLUDE_HEARD)),--include-heard)

similar: $(RECO_STATE) ## the N tracks closest to a track in the taste space: make similar MEDIA=<media_id> [N=10]
	$(PY) -m pipeline.recommend --similar "$(MEDIA)" --n "$(N)"

$(RECO_EVAL): $(WINNER) $(TRAIN_FEATS) $(EX_TRAIN) pipeline/recommend_eval.py $(RECO_CODE)
	$(PY) -m pipeline.recommend --evaluate --out $@

recommend-eval: $(RECO_EVAL) ## hit rate and NDCG at 10 of the recommender on the validation round, against popularity

evaluate: $(LATEST) $(ABLATION) ## print validation AUC, the group ablation and, on demo data, the test and oracle AUC
	$(PY) -m pipeline.evaluate

# --- checks ----------------------------------------------------------------------------
bench: | $(VENV_OK) ## time every stage at three sizes in a scratch folder -> reports/bench.json
	$(PY) -m tools.bench

test: | $(VENV_OK) ## the fast test suite (a few minutes)
	$(PY) -m pytest -q -m "not slow and not browser"

test-all: | $(VENV_OK) ## every test: end-to-end chains and the report in headless Chromium too
	$(PY) -m pytest -q

lint: | $(VENV_OK) ## ruff lint and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: | $(VENV_OK) ## ruff format the code
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean: ## remove generated data, features and model artifacts (never data/raw files of yours, submissions or runs)
	@$(or $(wildcard $(PY)),$(PYTHON)) -m tools.clean

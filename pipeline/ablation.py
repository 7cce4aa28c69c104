"""The feature-group ablation (`make ablation`): what is each feature group worth?

The registry's fixed-parameter LightGBM is fit on the training rounds with every feature
group, then once without each group, and each fit is scored on the validation round;
the table goes to ``reports/ablation.json`` (the report and `make evaluate` show it).
It measures each group's relative worth, so it fits on a stratified, seeded subsample
of the training rounds (``ABLATION_ROWS``; "none" = every row).  It depends on the
feature files and its own settings only: model budgets and Optuna never re-run it.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from core import config
from core.errors import run_cli
from core.io import read_json, write_json
from core.settings import AblationSettings, ModelSettings, load
from models.estimators import stratified_subsample
from models.registry import MODELS
from pipeline.data.dataset import load_matrix
from pipeline.runstore import data_fingerprint

log = logging.getLogger("ablation")

__all__ = ["ablation", "run"]

ABLATION_MODEL = "lightgbm"


def ablation(
    X: pd.DataFrame,
    y: np.ndarray,
    groups: dict[str, str],
    train: np.ndarray,
    valid: np.ndarray,
    *,
    estimator,
    progress: bool = True,
) -> dict:
    """Validation AUC with all features and without each group (delta > 0: the group helps)."""

    def score(cols: list[str]) -> float:
        model = clone(estimator)
        model.fit(X.loc[train, cols], y[train])
        return float(roc_auc_score(y[valid], model.predict_proba(X.loc[valid, cols])[:, 1]))

    all_cols = list(X.columns)
    t0 = time.perf_counter()
    full = score(all_cols)
    names = list(dict.fromkeys(groups.values()))
    rows = []
    for k, g in enumerate(names, 1):
        cols = [c for c in all_cols if groups[c] != g]
        auc = score(cols) if cols else float("nan")
        rows.append({"group": g, "n_features": len(all_cols) - len(cols), "auc_without": auc, "delta": full - auc})
        if progress:
            log.info(
                "ablation %d/%d: without %-13s AUC %.4f (delta %+.4f), %.0fs elapsed",
                k,
                len(names),
                g,
                auc,
                full - auc,
                time.perf_counter() - t0,
            )
    rows.sort(key=lambda r: -r["delta"])
    return {"full_auc": full, "model": f"{ABLATION_MODEL} (fixed parameters)", "rows": rows}


def _selection_effect(X, y, train, valid, estimator, full_auc: float, selection: Path) -> dict:
    """The same model's validation AUC with the selected features only, beside all features.

    Does dropping features cost anything?  A question about the features, answered by the
    ablation's fixed model on the ablation's rows (one more fit here, none in ``make train``).
    """
    if not selection.exists():
        return {}
    chosen = [f for f in read_json(selection).get("selected") or [] if f in X.columns]
    if not chosen:
        return {}
    model = clone(estimator).fit(X.loc[train, chosen], y[train])
    auc = float(roc_auc_score(y[valid], model.predict_proba(X.loc[valid, chosen])[:, 1]))
    log.info("selection effect: AUC %.4f with the %d selected features, %.4f with all %d", auc, len(chosen),
             full_auc, X.shape[1])  # fmt: skip
    return {
        "model": f"{ABLATION_MODEL} (fixed parameters, the ablation's rows)",
        "auc_selected": auc,
        "auc_all_features": full_auc,
        "n_selected": len(chosen),
        "n_all": int(X.shape[1]),
    }


def run(*, settings: AblationSettings, out: Path | None = None, selection: Path | None = None) -> dict:
    """Compute the ablation table on the train matrix and write it to ``out`` (reports/ablation.json)."""
    m = load_matrix("train")
    selection = Path(selection or config.MODELS_DIR / "selection.json")
    train, valid = m.training_mask(), m.validation_mask()
    rows = settings.ablation_rows
    if rows is not None and train.sum() > rows:
        keep = np.flatnonzero(train)[stratified_subsample(m.y[train], rows, seed=settings.seed)]
        train = np.zeros_like(train)
        train[keep] = True
    log.info(
        "ablation: %d training and %d validation rows, %d features in %d groups",
        train.sum(),
        valid.sum(),
        m.X.shape[1],
        len(set(m.groups.values())),
    )
    model = MODELS[ABLATION_MODEL].build(ModelSettings(seed=settings.seed, n_jobs=settings.n_jobs))
    # The registry's 300 rounds at 0.06 by default; other counts keep the product of rounds and step.
    model.set_params(model__n_estimators=settings.ablation_trees, model__learning_rate=18.0 / settings.ablation_trees)
    result = ablation(m.X, m.y, m.groups, train, valid, estimator=model)
    result["selection_effect"] = _selection_effect(m.X, m.y, train, valid, model, result["full_auc"], selection)
    result["training_rows"] = int(train.sum())
    result["model"] += f", {settings.ablation_trees} trees"
    # Which features it measured: the report tells a stale ablation (the quick loop skips it) from a current one.
    result["data_fingerprint"] = data_fingerprint(m)
    write_json(result, out or config.REPORTS / "ablation.json")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="default: reports/ablation.json")
    args = ap.parse_args()
    run(settings=load(AblationSettings), out=args.out)


if __name__ == "__main__":
    run_cli(main)

"""``make evaluate``: how good is the model, and what is each feature group worth?

* ``--ablation`` fits the registry's fixed-parameter LightGBM on the training rounds
  with every feature group, then once without each group, and scores each fit on the
  validation round; the table goes to ``reports/ablation.json`` for the report.
* Without flags it prints the validation AUC of the chosen model (``reports/metrics.json``),
  the ablation table and, on demo data, the AUC of ``submissions/latest.csv`` against
  the demo's hidden answers next to the oracle AUC of the true probabilities.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from core import config
from core.errors import PipelineError, run_cli
from core.io import read_json, write_json
from pipeline.data.dataset import load_matrix

log = logging.getLogger("evaluate")

__all__ = ["ablation", "demo_test_auc"]

ABLATION_MODEL = "lightgbm"
#: The ablation measures each group's relative worth, so it fits on a stratified, seeded
#: subsample of the training rounds (10 fits of the full set would dominate `make train`
#: at full size); "none" = every row.
_ablation_rows = os.environ.get("ABLATION_ROWS", "60000")
ABLATION_ROWS = None if _ablation_rows == "none" else int(_ablation_rows)


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


def demo_test_auc(submission: pd.DataFrame, answers: pd.DataFrame) -> dict[str, float]:
    """Test AUC of a submission and oracle AUC of the demo's true probabilities."""
    merged = answers.merge(submission, on="sample_id", how="inner", validate="one_to_one")
    if len(merged) != len(answers):
        raise PipelineError(
            f"the submission covers {len(merged)} of {len(answers)} demo test rows: run `make submit` again"
        )
    y = merged["is_listened_x"].to_numpy()
    return {
        "test_auc": float(roc_auc_score(y, merged["is_listened_y"].to_numpy())),
        "oracle_auc": float(roc_auc_score(y, merged["p_true"].to_numpy())),
        "n": int(len(merged)),
    }


def _run_ablation() -> None:
    # Imported here: printing the evaluation needs no model code.
    from models.registry import MODELS, stratified_subsample

    m = load_matrix("train")
    train, valid = m.training_mask(), m.validation_mask()
    if ABLATION_ROWS is not None and train.sum() > ABLATION_ROWS:
        keep = np.flatnonzero(train)[stratified_subsample(m.y[train], ABLATION_ROWS, seed=config.SEED)]
        train = np.zeros_like(train)
        train[keep] = True
    log.info(
        "ablation: %d training and %d validation rows, %d features in %d groups",
        train.sum(),
        valid.sum(),
        m.X.shape[1],
        len(set(m.groups.values())),
    )
    result = ablation(m.X, m.y, m.groups, train, valid, estimator=MODELS[ABLATION_MODEL](config.SEED))
    result["training_rows"] = int(train.sum())
    write_json(result, config.REPORTS / "ablation.json")


def _print_evaluation() -> None:
    metrics_path = config.REPORTS / "metrics.json"
    if not metrics_path.exists():
        raise PipelineError(f"{metrics_path} is missing: run `make train` first")
    metrics = read_json(metrics_path)
    out: dict[str, object] = {"validation_auc": metrics["validation_auc"], "model": metrics.get("winner")}
    folds = metrics.get("validation_folds") or []
    print(f"\nValidation AUC ({metrics.get('winner')}): {metrics['validation_auc']:.4f}")
    if len(folds) > 1:
        print(
            "  row-weighted mean of rolling-origin folds: "
            + "; ".join(f"round {f['round']} ({f['rows']} rows) {f['auc']:.4f}" for f in folds)
        )
    print("  (round 1 = each user's last Flow session start; round k = the k-th last, refit on what came before)")
    ranking = metrics.get("ranking", [])
    if ranking:
        print("\nModel ranking on the validation round (round 1):")
        for r in ranking:
            print(
                f"  {r['model']:<24} AUC {r['auc']:.4f}  [{r.get('auc_lo', float('nan')):.4f}, "
                f"{r.get('auc_hi', float('nan')):.4f}]"
            )
    abl_path = config.REPORTS / "ablation.json"
    if abl_path.exists():
        abl = read_json(abl_path)
        print(f"\nFeature-group ablation ({abl['model']}; all groups: AUC {abl['full_auc']:.4f}):")
        print(f"  {'group':<14} {'features':>8} {'AUC without':>12} {'worth':>8}")
        for r in abl["rows"]:
            print(f"  {r['group']:<14} {r['n_features']:>8} {r['auc_without']:>12.4f} {r['delta']:>+8.4f}")
        out["ablation"] = abl
    latest = config.SUBMISSIONS / "latest.csv"
    if config.is_demo_data() and config.DEMO_ANSWERS.exists() and latest.exists():
        res = demo_test_auc(pd.read_csv(latest), pd.read_csv(config.DEMO_ANSWERS))
        print(
            f"\nDEMO DATA: test AUC of submissions/latest.csv = {res['test_auc']:.4f}   "
            f"oracle AUC of the true probabilities = {res['oracle_auc']:.4f}   ({res['n']} test rows)"
        )
        print(f"           validation AUC - test AUC = {metrics['validation_auc'] - res['test_auc']:+.4f}")
        out.update(res)
    elif not config.is_demo_data():
        print("\n(Your own data: the test labels are hidden, so the validation AUC above is the local estimate.)")
    write_json(out, config.REPORTS / "evaluation.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ablation", action="store_true", help="compute reports/ablation.json")
    args = ap.parse_args()
    if args.ablation:
        _run_ablation()
    else:
        _print_evaluation()


if __name__ == "__main__":
    run_cli(main)

"""``make evaluate``: print how good the model is, and what each feature group is worth.

It prints the validation AUC of the chosen model (``reports/metrics.json``), the ranking,
the ablation table (``reports/ablation.json``, `make ablation`) and, on demo data, the AUC
of ``submissions/latest.csv`` against the demo's hidden answers next to the oracle AUC of
the true probabilities; the same goes to ``reports/evaluation.json``.
"""

from __future__ import annotations

import argparse
import logging

import pandas as pd
from sklearn.metrics import roc_auc_score

from core import config
from core.errors import PipelineError, run_cli
from core.io import read_json, write_json

log = logging.getLogger("evaluate")

__all__ = ["demo_test_auc"]


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
    ap.parse_args()
    _print_evaluation()


if __name__ == "__main__":
    run_cli(main)

"""The yardstick: an out-of-fold target-encoding + LightGBM baseline on raw DSG17 rows.

What a competent Kaggler fits first, and what the pipeline has to beat:

* every train row is a training row (Flow or not), with the raw columns, hour and weekday;
* smoothed target encodings (and counts) of user, track, artist, album, genre, context,
  user x track / artist / genre / listen_type / context, computed out of fold (5 random
  folds) for the train rows and from the whole history for the rows scored;
* LightGBM, 500 trees, learning rate 0.05, 63 leaves.

It reports two numbers, both honest:

* **validation AUC** on the pipeline's round 1 (each user's last Flow session start): the
  baseline is fit on the rows strictly before each user's round-1 row, so it is judged on
  the same rows as ``validation_auc`` in ``reports/metrics.json``;
* **test AUC** on demo data (or any data set with ``demo/answers.csv``), fit on all rows.

Run after ``make features train submit`` (it reads the cached parquet files and examples,
and scores ``submissions/latest.csv`` on the same answers)::

    .venv/bin/python tools/baseline.py                           # demo data: the demo's answers
    .venv/bin/python tools/baseline.py --answers DIR/demo/answers.csv

At full size (7.5M rows) a fit takes several minutes on 2 cores; ``--fit-rows`` samples the
rows LightGBM is fit on (the encodings still use every row).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold

from core import config
from core.settings import ModelSettings, load
from pipeline.data.dataset import before_each_users_cut
from pipeline.scoring import paired_auc_delta

KEYS: list[list[str]] = [
    ["user_id"],
    ["media_id"],
    ["artist_id"],
    ["album_id"],
    ["genre_id"],
    ["context_type"],
    ["user_id", "media_id"],
    ["user_id", "artist_id"],
    ["user_id", "genre_id"],
    ["user_id", "listen_type"],
    ["user_id", "context_type"],
]
RAW = [
    "genre_id",
    "context_type",
    "platform_name",
    "platform_family",
    "media_duration",
    "listen_type",
    "user_gender",
    "user_age",
    "release_date",
]
PRIOR_STRENGTH = 10.0
LGBM = dict(
    n_estimators=500,
    learning_rate=0.05,
    num_leaves=63,
    subsample=0.8,
    subsample_freq=1,
    colsample_bytree=0.8,
    deterministic=True,
    force_col_wise=True,
    verbose=-1,
)


def encode(fit: pd.DataFrame, apply: pd.DataFrame) -> pd.DataFrame:
    """Smoothed listen rate and count of each key of ``KEYS`` in ``fit``, for the rows of ``apply``."""
    prior = float(fit["is_listened"].mean())
    out = {}
    for key in KEYS:
        stats = fit.groupby(key, observed=True)["is_listened"].agg(["sum", "count"])
        m = apply[key].merge(stats, left_on=key, right_index=True, how="left")
        s, n = m["sum"].fillna(0).to_numpy(), m["count"].fillna(0).to_numpy()
        name = "_".join(key)
        out[f"te_{name}"] = (s + PRIOR_STRENGTH * prior) / (n + PRIOR_STRENGTH)
        out[f"n_{name}"] = n
    return pd.DataFrame(out, index=apply.index)


def _plain(rows: pd.DataFrame) -> pd.DataFrame:
    ts = rows["ts_listen"].to_numpy().astype(np.int64)
    return rows[RAW].assign(hour=(ts % 86_400) // 3_600, weekday=(ts // 86_400) % 7)


def fit_predict(
    history: pd.DataFrame, target: pd.DataFrame, *, seed: int, fit_rows: int | None, n_jobs: int = 2
) -> np.ndarray:
    """Fit on ``history`` (out-of-fold encodings), score ``target`` (encodings from all of ``history``)."""
    history = history.reset_index(drop=True)
    folds = KFold(5, shuffle=True, random_state=seed).split(history)
    oof = pd.concat([encode(history.iloc[f], history.iloc[v]) for f, v in folds]).sort_index()
    X = pd.concat([_plain(history), oof], axis=1)
    y = history["is_listened"].to_numpy()
    if fit_rows is not None and len(X) > fit_rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(X), size=fit_rows, replace=False))
        X, y = X.iloc[keep], y[keep]
    model = lgb.LGBMClassifier(random_state=seed, n_jobs=n_jobs, **LGBM).fit(X, y)
    target = target.reset_index(drop=True)
    Xt = pd.concat([_plain(target), encode(history, target)], axis=1)
    return model.predict_proba(Xt)[:, 1]


def validation_auc(
    train: pd.DataFrame, examples: pd.DataFrame, *, seed: int, fit_rows: int | None, n_jobs: int = 2
) -> float:
    """AUC on round 1, fit on the rows strictly before each user's round-1 row."""
    val = examples[examples["round"] == 1]
    before = before_each_users_cut(
        train["user_id"].to_numpy(),
        train["ts_listen"].to_numpy(),
        val["user_id"].to_numpy(),
        val["ts_listen"].to_numpy(),
    )
    target = train.iloc[val["row_id"].to_numpy()]
    p = fit_predict(train[before], target, seed=seed, fit_rows=fit_rows, n_jobs=n_jobs)
    return float(roc_auc_score(target["is_listened"].to_numpy(), p))


def _answers_path(arg: str | None) -> Path | None:
    """``--answers`` if given; else the demo's answers, but only while data/raw holds that demo."""
    if arg:
        return Path(arg)
    return config.DEMO_ANSWERS if config.is_demo_data() and config.DEMO_ANSWERS.exists() else None


def _submission() -> Path | None:
    """submissions/latest.csv when it was written for this checkout's test file (not for other data)."""
    latest = config.SUBMISSIONS / "latest.csv"
    if config.DATA != config.ROOT / "data" or not latest.exists():
        return None
    return latest if latest.stat().st_mtime >= config.TEST_PARQUET.stat().st_mtime else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-validation", action="store_true", help="skip the round-1 validation AUC")
    ap.add_argument("--fit-rows", type=int, default=None, help="sample this many rows for the LightGBM fit")
    ap.add_argument(
        "--answers", default=None, help="sample_id,is_listened of the test rows (default: the demo's, on demo data)"
    )
    args = ap.parse_args()
    # The project's seed and thread settings, like every model of the registry.
    settings = load(ModelSettings)
    t0 = time.perf_counter()
    train = pd.read_parquet(config.TRAIN_PARQUET)
    metrics = config.REPORTS / "metrics.json"
    if metrics.exists():
        print(
            f"pipeline validation_auc (reports/metrics.json): {json.loads(metrics.read_text())['validation_auc']:.4f}"
        )
    if not args.no_validation:
        ex = pd.read_parquet(config.EXAMPLES_TRAIN, columns=["row_id", "round", "user_id", "ts_listen"])
        auc = validation_auc(train, ex, seed=settings.seed, fit_rows=args.fit_rows, n_jobs=settings.n_jobs)
        print(f"baseline validation AUC (round 1): {auc:.4f}   ({time.perf_counter() - t0:.0f}s)", flush=True)
    answers = _answers_path(args.answers)
    if answers is None:
        print("no test answers (--answers PATH): test AUCs skipped")
        return
    truth = pd.read_csv(answers).set_index("sample_id")["is_listened"]
    test = pd.read_parquet(config.TEST_PARQUET)
    ids = test["sample_id"].to_numpy()
    if not truth.index.isin(ids).all() or len(truth) != len(ids):
        raise SystemExit(f"{answers} does not hold one answer per sample_id of {config.TEST_PARQUET}")
    y = truth.loc[ids].to_numpy()
    p = fit_predict(train, test, seed=settings.seed, fit_rows=args.fit_rows, n_jobs=settings.n_jobs)
    base = roc_auc_score(y, p)
    print(f"baseline test AUC: {base:.4f}   ({time.perf_counter() - t0:.0f}s)")
    # The baseline's own submission, beside the pipeline's (never over them): for other comparisons.
    out = config.REPORTS / "baseline_test_predictions.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"sample_id": ids, "is_listened": p}).to_csv(out, index=False, float_format="%.6f")
    print(f"baseline test predictions: {out}")
    latest = _submission()
    if latest is not None:
        sub = pd.read_csv(latest).set_index("sample_id")["is_listened"].loc[ids].to_numpy()
        # Paired bootstrap: both sides scored on the same resampled test rows.
        delta, lo, hi = paired_auc_delta(y, sub, p, n_boot=settings.bootstrap_rounds, seed=settings.seed)
        print(
            f"pipeline test AUC (submissions/latest.csv): {roc_auc_score(y, sub):.4f}   margin over the baseline "
            f"{delta:+.4f} [{lo:+.4f}, {hi:+.4f}] (paired bootstrap 95%, {settings.bootstrap_rounds} resamples)"
        )


if __name__ == "__main__":
    main()

"""Which true effects a submission follows: its log-odds against each term of tools/altgen.py's true logit.

    python tools/logit_terms.py SUBMISSION.csv DIR/demo/logit_terms.csv
    python tools/logit_terms.py SUBMISSION.csv DIR/demo/logit_terms.csv \
        --features data/processed --answers DIR/demo/answers.csv

``tools/altgen.py --components`` writes every test row's true logit term by term.  This
regresses the submission's log-odds on all of them at once (least squares) and prints each
term's coefficient divided by the coefficient of the user's own propensity (``user`` +
``user_flow``, taken as one term: every test row is a Flow play): 1.0 means the submission
follows that effect as closely as it follows the user, 0 means it does not see it.  A term
the submission follows little is signal the features miss (or noise nobody can predict: the
session mood is partly that).  Also the correlation of the submission's log-odds with the
true logit.

With ``--features`` (a project's ``data/processed``, after ``make features``) and ``--answers``
it also says what each term is *worth* and how much of it the features carry: each term is
estimated from the test rows' features (a LightGBM regressor, out of fold over 3 folds of the
test rows; a diagnostic that reads the true terms, never a model to submit), and the true logit
is scored with that term replaced by its estimate and with the term dropped (set to its mean).
"oracle" is the true logit's AUC; "all estimated", the sum of every term's estimate, is about
the best a model of these features could do: a submission close to it is limited by its
features, not by its model.  It takes about a minute at 2,000 users, about five at full size (one thread).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project's packages, as tools/baseline.py does

from core.errors import PipelineError


def _user_as_one(terms: pd.DataFrame) -> pd.DataFrame:
    """The terms without ``sample_id``, ``user`` + ``user_flow`` taken as one ``user`` term (every test row
    is a Flow play, so the two always act together)."""
    rows = terms.drop(columns="sample_id", errors="ignore").copy()
    rows["user"] = rows["user"] + rows.pop("user_flow")
    return rows


def _aligned(submission: pd.DataFrame, terms: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The terms (``user`` + ``user_flow`` as one ``user`` term), the submission's log-odds and the true
    logit, row for row."""
    rows = terms.merge(submission[["sample_id", "is_listened"]], on="sample_id", how="inner", validate="one_to_one")
    if len(rows) != len(terms):
        raise ValueError(f"the submission has {len(rows)} of the {len(terms)} test rows (sample_id) of the terms file")
    p = np.clip(rows.pop("is_listened").to_numpy(dtype=np.float64), 1e-6, 1 - 1e-6)
    true = rows.drop(columns="sample_id").sum(axis=1).to_numpy()
    return _user_as_one(rows).drop(columns="session_start"), np.log(p / (1 - p)), true


def follow(submission: pd.DataFrame, terms: pd.DataFrame) -> pd.Series:
    """Each term's least-squares coefficient in the submission's log-odds, relative to the user's propensity."""
    rows, z, _ = _aligned(submission, terms)
    return _relative_coefficients(rows, z)


def _relative_coefficients(rows: pd.DataFrame, z: np.ndarray) -> pd.Series:
    x = np.column_stack([rows.to_numpy(dtype=np.float64), np.ones(len(rows))])
    coef, *_ = np.linalg.lstsq(x, z, rcond=None)
    return pd.Series(coef[: rows.shape[1]] / coef[0], index=rows.columns)


def _test_features(processed: Path, sample_id: np.ndarray) -> pd.DataFrame:
    """Every numeric feature of the test rows (all groups under ``processed/features/test``), in ``sample_id`` order."""
    from pipeline.data.dataset import load_matrix  # the pipeline's own reader: it refuses a stale group file

    groups = sorted(f.stem for f in (processed / "features" / "test").glob("*.parquet"))
    if not groups:  # (load_matrix would read this run's groups instead)
        raise ValueError(f"no feature files under {processed / 'features' / 'test'} (run make features)")
    m = load_matrix(
        "test", groups=groups, features_dir=processed / "features", examples_path=processed / "examples_test.parquet"
    )
    x = m.X.select_dtypes("number").astype(np.float64)
    x.index = m.examples["sample_id"].to_numpy()
    missing = np.setdiff1d(sample_id, x.index.to_numpy())
    if len(missing):
        raise ValueError(f"{len(missing)} sample_id(s) of the terms file have no features (first: {missing[0]})")
    return x.loc[sample_id].reset_index(drop=True)


def worth(terms: pd.DataFrame, features: pd.DataFrame, y: np.ndarray, *, folds: int = 3, seed: int = 0) -> pd.DataFrame:
    """Per term (``user`` + ``user_flow`` as one): its sd, the out-of-fold R^2 of its estimate from
    ``features``, and the AUC on ``y`` of the true logit with the term estimated / dropped.

    ``terms`` and ``features`` are row-aligned (one test row per row).  Two extra rows:
    ``oracle`` (the true logit, nothing estimated) and ``all estimated`` (every term replaced).
    """
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import KFold, cross_val_predict

    rows = _user_as_one(terms)
    true = rows.sum(axis=1).to_numpy()
    cv = KFold(folds, shuffle=True, random_state=seed)
    model = lgb.LGBMRegressor(
        n_estimators=300, learning_rate=0.05, num_leaves=31, random_state=seed, n_jobs=1, verbose=-1
    )
    out, estimated = [], np.zeros(len(rows))
    for name in rows.columns:
        t = rows[name].to_numpy(dtype=np.float64)
        if np.ptp(t) == 0:  # a constant (session_start: every test row opens a session)
            estimated += t
            continue
        e = cross_val_predict(model, features, t, cv=cv)
        estimated += e
        out.append(
            {
                "term": name,
                "sd": t.std(),
                "r2": 1 - np.mean((t - e) ** 2) / t.var(),
                "auc_estimated": roc_auc_score(y, true - t + e),
                "auc_dropped": roc_auc_score(y, true - t + t.mean()),
            }
        )
    table = pd.DataFrame(out)
    oracle = roc_auc_score(y, true)
    extra = pd.DataFrame(
        [
            {"term": "oracle", "sd": true.std(), "r2": 1.0, "auc_estimated": oracle, "auc_dropped": np.nan},
            {
                "term": "all estimated",
                "sd": true.std(),
                "r2": 1 - np.mean((true - estimated) ** 2) / true.var(),
                "auc_estimated": roc_auc_score(y, estimated),
                "auc_dropped": np.nan,
            },
        ]
    )
    return pd.concat([table, extra], ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("submission", help="sample_id,is_listened (a probability per test row)")
    ap.add_argument("terms", help="logit_terms.csv from tools/altgen.py --components")
    ap.add_argument("--features", type=Path, help="a project's data/processed: also what each term is worth")
    ap.add_argument("--answers", type=Path, help="sample_id,is_listened of the test rows (with --features)")
    a = ap.parse_args(argv)
    if (a.features is None) != (a.answers is None):
        print("ERROR: --features and --answers go together", file=sys.stderr)
        return 2
    sub, terms = pd.read_csv(a.submission), pd.read_csv(a.terms)
    try:
        rows, z, true = _aligned(sub, terms)
    except ValueError as e:
        print(f"ERROR: {a.submission}: {e}", file=sys.stderr)
        return 2
    print(f"correlation of the submission's log-odds with the true logit: {np.corrcoef(z, true)[0, 1]:.3f}")
    print(f"{'term':<22}{'sd':>8}{'followed':>10}")
    sd = rows.std()
    for name, v in _relative_coefficients(rows, z).items():
        print(f"{name:<22}{sd[name]:>8.3f}{v:>10.2f}")
    if a.features is not None:
        try:
            x = _test_features(a.features, terms["sample_id"].to_numpy())
            answers = pd.read_csv(a.answers).set_index("sample_id")["is_listened"]
            y = answers.reindex(terms["sample_id"].to_numpy())
            if y.isna().any():
                raise ValueError(f"{a.answers} has no answer for {int(y.isna().sum())} sample_id(s) of the terms file")
        except (PipelineError, ValueError, KeyError, OSError) as e:
            print(f"ERROR: {e}", file=sys.stderr)
            return 2
        from sklearn.metrics import roc_auc_score

        table = worth(terms, x, y.to_numpy())
        print(f"\nwhat each term is worth (AUC of the true logit; the submission: {roc_auc_score(y, z):.4f})")
        print(f"{'term':<22}{'sd':>8}{'R2 from features':>18}{'AUC estimated':>15}{'AUC dropped':>13}")
        for r in table.itertuples():
            print(f"{r.term:<22}{r.sd:>8.3f}{r.r2:>18.3f}{r.auc_estimated:>15.4f}{r.auc_dropped:>13.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

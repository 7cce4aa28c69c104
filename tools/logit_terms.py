"""Which true effects a submission follows: its log-odds against each term of tools/altgen.py's true logit.

    python tools/logit_terms.py SUBMISSION.csv DIR/demo/logit_terms.csv

``tools/altgen.py --components`` writes every test row's true logit term by term.  This
regresses the submission's log-odds on all of them at once (least squares) and prints each
term's coefficient divided by the coefficient of the user's own propensity (``user`` +
``user_flow``, taken as one term: every test row is a Flow play): 1.0 means the submission
follows that effect as closely as it follows the user, 0 means it does not see it.  A term
the submission follows little is signal the features miss (or noise nobody can predict: the
session mood is partly that).  Also the correlation of the submission's log-odds with the
true logit.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd


def _aligned(submission: pd.DataFrame, terms: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The terms (``user`` + ``user_flow`` as one ``user`` term), the submission's log-odds and the true
    logit, row for row."""
    rows = terms.merge(submission[["sample_id", "is_listened"]], on="sample_id", how="inner", validate="one_to_one")
    if len(rows) != len(terms):
        raise ValueError(f"the submission has {len(rows)} of the {len(terms)} test rows (sample_id) of the terms file")
    p = np.clip(rows.pop("is_listened").to_numpy(dtype=np.float64), 1e-6, 1 - 1e-6)
    true = rows.drop(columns="sample_id").sum(axis=1).to_numpy()
    rows["user"] = rows["user"] + rows.pop("user_flow")
    return rows.drop(columns=["sample_id", "session_start"]), np.log(p / (1 - p)), true


def follow(submission: pd.DataFrame, terms: pd.DataFrame) -> pd.Series:
    """Each term's least-squares coefficient in the submission's log-odds, relative to the user's propensity."""
    rows, z, _ = _aligned(submission, terms)
    return _relative_coefficients(rows, z)


def _relative_coefficients(rows: pd.DataFrame, z: np.ndarray) -> pd.Series:
    x = np.column_stack([rows.to_numpy(dtype=np.float64), np.ones(len(rows))])
    coef, *_ = np.linalg.lstsq(x, z, rcond=None)
    return pd.Series(coef[: rows.shape[1]] / coef[0], index=rows.columns)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("submission", help="sample_id,is_listened (a probability per test row)")
    ap.add_argument("terms", help="logit_terms.csv from tools/altgen.py --components")
    a = ap.parse_args(argv)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Assemble the model matrix from the cached examples and feature-group files, and its train/validation split."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import config
from core.errors import PipelineError
from core.io import read_json
from features import active_groups
from models.estimators import LATER_EXTRA

log = logging.getLogger("dataset")

__all__ = ["Matrix", "Split", "load_matrix", "load_selection", "before_each_users_cut", "VALIDATION_ROUND"]

#: Round 1 (each user's last Flow session start in train) is the validation round.
VALIDATION_ROUND = 1


@dataclass(frozen=True)
class Matrix:
    """Examples of one split with their features.

    ``X`` is float32, one column per feature, rows in example order; ``groups`` maps
    each feature name to its feature group; ``examples`` keeps ids, round, user,
    timestamp and (train only) the label.
    """

    examples: pd.DataFrame
    X: pd.DataFrame
    groups: dict[str, str]

    @property
    def y(self) -> np.ndarray:
        return self.examples["is_listened"].to_numpy().astype(np.int8)

    @property
    def rounds(self) -> np.ndarray:
        return self.examples["round"].to_numpy()

    def validation_mask(self) -> np.ndarray:
        return self.rounds == VALIDATION_ROUND

    def training_mask(self) -> np.ndarray:
        """Rows a model may learn from while the validation round is held out."""
        return self.rounds != VALIDATION_ROUND

    def inner_rounds(self, mask: np.ndarray | None = None) -> np.ndarray:
        """The rounds of the rows in ``mask`` (default: every row) as an inner holdout must see them.

        The stack's weights and the Optuna trials are scored on the latest round present
        (round 2 in the bake-off) after a fit on the older rows.  A user's extra rows that
        come after that user's held-out example would show the model the user's future, so
        they get the code :data:`~models.estimators.LATER_EXTRA`: left out of the inner fit,
        kept for the fit on every row.  The same rule as :meth:`fold_masks`, which makes a
        stack's inner fit in one fold the same fit as the next fold's own (and reusable).
        """
        mask = np.ones(len(self.rounds), dtype=bool) if mask is None else mask
        r = self.rounds[mask].copy()
        positive = r[r >= 1]
        if not positive.size:
            return r
        held = r == positive.min()
        user = self.examples["user_id"].to_numpy()[mask]
        ts = self.examples["ts_listen"].to_numpy()[mask]
        r[(r < 0) & ~before_each_users_cut(user, ts, user[held], ts[held])] = LATER_EXTRA
        return r

    def fold_masks(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Training and validation rows of the rolling-origin fold that validates on round ``k``.

        Validation: round ``k`` (each user's k-th last Flow session start).  Training:
        the older rounds (``> k``) and the extra rows (round -1), keeping only rows
        strictly before their own user's cut, as the test's own user history is before the
        test row.  The cut is the user's round-``k`` example, or for a user without one their
        latest-numbered round below ``k`` (their earliest example of rounds ``1..k``): the
        rows fold ``k-1``'s stack fits its members on (:meth:`inner_rounds`), so that fit is
        this fold's own and is read back, not fit again.  For ``k = 1`` this is
        :meth:`training_mask` (every training example is before its user's round 1).
        """
        r = self.rounds
        valid = r == k
        user, ts = self.examples["user_id"].to_numpy(), self.examples["ts_listen"].to_numpy()
        upto = (r >= 1) & (r <= k)
        ex = pd.DataFrame({"user": user[upto], "round": r[upto], "ts": ts[upto]})
        cuts = ex.sort_values(["user", "round"]).drop_duplicates("user", keep="last")
        before = before_each_users_cut(user, ts, cuts["user"].to_numpy(), cuts["ts"].to_numpy())
        train = ((r > k) | (r < 0)) & before
        return train, valid


def before_each_users_cut(user: np.ndarray, ts: np.ndarray, cut_user: np.ndarray, cut_ts: np.ndarray) -> np.ndarray:
    """True for the rows (``user``, ``ts``) strictly before their own user's cut time.

    ``cut_user`` holds each user at most once; a user without a cut keeps every row.
    """
    cut = pd.Series(cut_ts, index=cut_user).reindex(user).to_numpy(dtype=np.float64)
    return np.asarray(ts, dtype=np.float64) < np.nan_to_num(cut, nan=np.inf)


def load_matrix(split: str, *, groups: list[str] | None = None, features_dir=None, examples_path=None) -> Matrix:
    """Read ``examples_<split>.parquet`` and the file of every group (default: this run's groups) for the split."""
    features_dir = features_dir or config.FEATURES_DIR
    examples_path = examples_path or (config.EXAMPLES_TRAIN if split == "train" else config.EXAMPLES_TEST)
    examples = pd.read_parquet(examples_path)
    frames, owner = [], {}
    for group in groups or active_groups():
        path = features_dir / split / f"{group}.parquet"
        if not path.exists():
            raise PipelineError(f"feature file {path} is missing: run `make features` first")
        df = pd.read_parquet(path)
        if len(df) != len(examples) or not np.array_equal(
            df["example_id"].to_numpy(), examples["example_id"].to_numpy()
        ):
            raise PipelineError(f"feature file {path} does not match {examples_path}: run `make features` again")
        df = df.drop(columns="example_id")
        owner.update(dict.fromkeys(df.columns, group))
        frames.append(df)
    X = pd.concat(frames, axis=1) if frames else pd.DataFrame(index=examples.index)
    return Matrix(examples=examples, X=X, groups=owner)


def load_selection(path: Path, matrix: Matrix) -> dict[str, Any]:
    """Read selection.json and check it matches the matrix's features."""
    if not path.exists():
        raise PipelineError(f"{path} is missing: run `make select` first")
    selection = read_json(path)
    selected = selection.get("selected") or []
    if not selected:
        raise PipelineError(f"{path} selects no feature: run `make select` again")
    missing = [f for f in selected if f not in matrix.X.columns]
    if missing:
        raise PipelineError(
            f"{path} lists {len(missing)} feature(s) the matrix no longer has ({', '.join(missing[:5])}...): "
            "the features changed since the selection; run `make select` again"
        )
    known = set(selected) | set(selection.get("dropped") or [])
    new = [f for f in matrix.X.columns if f not in known]
    if new:
        log.warning(
            "%d feature(s) are newer than %s and are not used (%s): run `make select` to consider them",
            len(new),
            path.name,
            ", ".join(new[:5]),
        )
    return selection


def _check_labels(y: np.ndarray, what: str) -> None:
    if len(y) == 0:
        raise PipelineError(f"the {what} has no examples: check the examples (ROUNDS)")
    if len(np.unique(y)) < 2:
        raise PipelineError(f"the {what} holds a single class ({int(y[0])}): ROC AUC is undefined")


@dataclass(frozen=True)
class Split:
    """The training rounds and the validation round, restricted to the selected features."""

    X_train: pd.DataFrame
    y_train: np.ndarray
    r_train: np.ndarray
    X_valid: pd.DataFrame
    y_valid: np.ndarray
    features: list[str]

    @classmethod
    def of(cls, matrix: Matrix, features: list[str]) -> Split:
        train, valid = matrix.training_mask(), matrix.validation_mask()
        y = matrix.y
        _check_labels(y[train], "training rounds")
        _check_labels(y[valid], "validation round (round 1)")
        return cls(
            X_train=matrix.X.loc[train, features],
            y_train=y[train],
            r_train=matrix.inner_rounds(train),
            X_valid=matrix.X.loc[valid, features],
            y_valid=y[valid],
            features=features,
        )

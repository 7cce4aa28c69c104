"""Assemble the model matrix from the cached examples and feature-group files."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features import FEATURE_GROUPS
from core import config
from core.errors import PipelineError

__all__ = ["Matrix", "load_matrix", "before_each_users_cut", "VALIDATION_ROUND"]

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

    def fold_masks(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Training and validation rows of the rolling-origin fold that validates on round ``k``.

        Validation: round ``k`` (each user's k-th last Flow session start).  Training:
        the older rounds (``> k``) and the extra rows (round -1), keeping only rows
        strictly before their own user's round-``k`` example, as the test's own user
        history is before the test row.  For ``k = 1`` this is :meth:`training_mask`
        (every training example is before its user's round 1 by construction).
        """
        r = self.rounds
        valid = r == k
        user, ts = self.examples["user_id"].to_numpy(), self.examples["ts_listen"].to_numpy()
        train = ((r > k) | (r < 0)) & before_each_users_cut(user, ts, user[valid], ts[valid])
        return train, valid


def before_each_users_cut(user: np.ndarray, ts: np.ndarray, cut_user: np.ndarray, cut_ts: np.ndarray) -> np.ndarray:
    """True for the rows (``user``, ``ts``) strictly before their own user's cut time.

    ``cut_user`` holds each user at most once; a user without a cut keeps every row.
    """
    cut = pd.Series(cut_ts, index=cut_user).reindex(user).to_numpy(dtype=np.float64)
    return np.asarray(ts, dtype=np.float64) < np.nan_to_num(cut, nan=np.inf)


def load_matrix(split: str, *, groups: list[str] | None = None, features_dir=None, examples_path=None) -> Matrix:
    """Read ``examples_<split>.parquet`` and every feature group's file for the split."""
    features_dir = features_dir or config.FEATURES_DIR
    examples_path = examples_path or (config.EXAMPLES_TRAIN if split == "train" else config.EXAMPLES_TEST)
    examples = pd.read_parquet(examples_path)
    frames, owner = [], {}
    for group in groups or list(FEATURE_GROUPS):
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

"""The recommender's state at "now", written once by ``make features``: what a request needs of the history.

A request (``make recommend USER=<id>``) scores a few hundred candidates for one user at
"now".  Passing the feature groups over a full-size history for that costs about a minute;
this state makes it a lookup (:mod:`features.now` explains why the numbers are the same):

* ``data/processed/recommend/state.joblib``: the groups' :class:`features.now.NowState`,
  the catalogue, the pool's shared part at now with every artist's neighbours already
  found, the id a new user is scored as, and a stamp of what it was built from;
* ``data/processed/recommend/plays_by_user.parquet``: the history in (user, time) order,
  in row groups, so one user's plays are read without the rest.

:func:`load_state` returns None, with the reason, when the files are missing or were built
from other data, settings or code; the recommender then takes the full pass.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from core import config
from core.errors import run_cli
from core.io import write_parquet
from features import active_groups
from features.history import code_hash
from features.now import NowState, build_state
from pipeline.pool import PoolContext, Scene, candidate_rows

log = logging.getLogger("recommend")

__all__ = ["RecommendState", "NowScene", "build", "load_state", "STATE_DIR"]

STATE_DIR = config.RECOMMEND_STATE
#: Rows per row group of plays_by_user.parquet: a user's plays are one or two groups to read.
ROW_GROUP = 32_768
#: Code the state is a function of (besides the data and the settings).
_CODE_FILES = (
    *sorted(str(p) for p in (Path(__file__).parents[1] / "features").glob("*.py")),
    str(Path(__file__).with_name("pool.py")),
    __file__,
)


def _stamp(history_path: Path, test_path: Path, settings: object) -> dict[str, object]:
    """What the state is a function of: the two input files (size, mtime), the settings, the groups and the code."""

    def stat(p: Path) -> list[int] | None:
        return [p.stat().st_size, p.stat().st_mtime_ns] if p.exists() else None

    return {
        "train": stat(history_path),
        "test": stat(test_path),
        "settings": repr(settings),
        "groups": active_groups(),
        "code": code_hash(*_CODE_FILES),
    }


@dataclass
class RecommendState:
    features: NowState
    catalogue: pd.DataFrame
    pool: PoolContext
    new_user: int
    stamp: dict[str, object]


def build(history_path: Path, test_path: Path, out_dir: Path) -> RecommendState:
    """Compute the state from the train history (and the test file's last time) and write it to ``out_dir``."""
    t0 = time.perf_counter()
    scene = Scene(history_path=history_path, test_path=test_path)
    history = scene.history
    context = scene.pool_context
    context.complete()  # every artist's neighbours: a request never needs the plays again
    # Every track a pool can hold (recent hits, every artist's best): the item tables' keys.
    ids = np.union1d(np.asarray(context.popular, dtype=np.int64), context.best["media_id"].to_numpy(np.int64))
    universe = scene.catalogue.loc[ids[np.isin(ids, scene.catalogue.index.to_numpy())]]
    rows = candidate_rows(scene.new_user, history.df.iloc[:0], universe, scene.now, age=None, gender=None)
    state = RecommendState(
        features=build_state(history, scene.now, rows, groups=active_groups()),
        catalogue=scene.catalogue,
        pool=context,
        new_user=scene.new_user,
        stamp=_stamp(Path(history_path), Path(test_path), scene.settings),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    by_user = history.df.iloc[history.index("user_id").order].reset_index(drop=True)
    write_parquet(by_user, out_dir / "plays_by_user.parquet", row_group_size=ROW_GROUP)
    tmp = out_dir / f".tmp-{os.getpid()}-state.joblib"
    joblib.dump(state, tmp)
    os.replace(tmp, out_dir / "state.joblib")  # last: a state file always has its plays beside it
    log.info(
        "recommender state at now=%d: %d of %d tracks can be proposed, %.1fs",
        scene.now, len(universe), len(scene.catalogue), time.perf_counter() - t0,
    )  # fmt: skip
    return state


def load_state(
    out_dir: Path | None = None, *, history_path: Path | None = None, test_path: Path | None = None
) -> tuple[RecommendState | None, str]:
    """The saved state if it was built from the current inputs, settings and code; else None and why."""
    from core.settings import FeatureSettings, load

    out_dir = Path(out_dir or config.RECOMMEND_STATE)
    path = out_dir / "state.joblib"
    if not path.exists() or not (out_dir / "plays_by_user.parquet").exists():
        return None, f"{path} is missing (make features writes it)"
    try:
        state = joblib.load(path, mmap_mode="r")  # the large arrays stay on disk until a request reads them
    except Exception as exc:  # a truncated or foreign file is not trusted
        return None, f"{path} is unreadable ({type(exc).__name__})"
    stamp = _stamp(
        Path(history_path or config.TRAIN_PARQUET), Path(test_path or config.TEST_PARQUET), load(FeatureSettings)
    )
    if not isinstance(state, RecommendState) or state.stamp != stamp:
        return None, f"{path} was built from other data, settings or code (make features rebuilds it)"
    return state, ""


class NowScene(Scene):
    """A :class:`~pipeline.pool.Scene` from the saved state: no history loaded, one user's plays read per request."""

    def __init__(self, state: RecommendState, plays_path: Path | None = None) -> None:
        self.state = state
        self.settings = state.features.settings
        self.history = None  # type: ignore[assignment]
        self.catalogue = state.catalogue
        self.now = state.features.now
        self._pool_context = state.pool
        self._plays = Path(plays_path or config.RECOMMEND_STATE / "plays_by_user.parquet")
        self._rows: dict[int, pd.DataFrame] = {}

    @property
    def new_user(self) -> int:
        return self.state.new_user

    def user_rows(self, user_id: int) -> pd.DataFrame:
        """The user's history rows in (time, file) order: the rows the full history's user index holds."""
        if user_id not in self._rows:
            self._rows[user_id] = pd.read_parquet(self._plays, filters=[("user_id", "==", int(user_id))])
        return self._rows[user_id]

    def sample_users(self) -> dict[str, int]:
        raise NotImplementedError("the sample users are chosen from the full history (pipeline.pool.Scene)")


def main() -> None:
    ap = argparse.ArgumentParser(description="Write the recommender's state at now (make features).")
    ap.add_argument("--history", type=Path, default=config.TRAIN_PARQUET)
    ap.add_argument("--test", type=Path, default=config.TEST_PARQUET)
    ap.add_argument("--out-dir", type=Path, default=STATE_DIR)
    args = ap.parse_args()
    build(args.history, args.test, args.out_dir)


if __name__ == "__main__":
    # Through the imported module, not __main__: the pickled state must name
    # pipeline.recommend_state.RecommendState, or no other process could load it.
    from pipeline import recommend_state

    run_cli(recommend_state.main)

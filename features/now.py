"""Features of rows at "now" -- after every play of the history -- without a pass over the history.

``make recommend`` scores a user's candidates as the first track of a new Flow session at
"now" (:mod:`pipeline.pool`).  A pass of the groups over a full-size history costs about a
minute; at now, though, a row's features depend on the history through three things only:

* the target user's own plays (a few hundred rows);
* totals over every play: the groups' global as-of priors (at now, "every row before the
  target" is every row), overall and per context and platform;
* what the other users' plays say about the candidate: its item rates and qualities, the
  demographic cells of its genre, its vector in the taste space, its artist's neighbours, its
  artist's genre.

:func:`build_state` computes the last two once per history (``make features`` writes them,
:mod:`pipeline.recommend_state`); :func:`now_features` then runs each group on a
:class:`UserHistory` -- the user's rows alone, answering the global priors from the state's
totals -- with the item side from the state.  Nothing is re-implemented: the user-side
groups are their own functions, the item-side tables are their groups' own output for every
track a pool can hold, the taste space and the neighbour lists are what the cf and neighbours groups
use for any row of that week.  So the features are the numbers a full pass gives
(tests/test_now.py checks every default group, for a heavy, a light and an unknown user).

The fm group's state is the snapshot in force at now (:func:`features.fm.fm_now_state`);
the user is folded in from their own rows.  The opt-in rbm has none: a winner that reads it
is scored by a full pass (:class:`pipeline.recommend.Recommender` says so).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.settings import FeatureSettings
from features import get_group
from features.asof import find_sorted
from features.cf import TasteSpace, cf_features, taste_space
from features.demographics import AGE_BAND_EDGES, age_band
from features.fm import FmNow, fm_features, fm_now_state
from features.genre import ArtistGenres, artist_genres, genre_features
from features.history import History
from features.neighbours import NeighbourLists, neighbour_lists, neighbours_features
from features.user import flow_session_starts
from features.user_item import NOVELTY_KEYS, first_plays

__all__ = ["NOW_GROUPS", "NowState", "UserHistory", "build_state", "now_features"]

#: Groups that run on the user's rows alone, their global priors from the state's totals.
USER_SIDE = ("time", "media", "user", "user_item", "sequence", "content")
#: Groups whose output at now depends on the row's item keys only: their own output for
#: every key of the catalogue, looked up.  (key columns of the lookup)
ITEM_KEYS = ("media_id", "album_id", "artist_id", "genre_id")
TABLES = {"item": ITEM_KEYS, "quality": ITEM_KEYS}
NOW_GROUPS = (*USER_SIDE, *TABLES, "demographics", "cf", "neighbours", "genre", "fm")
#: Columns whose as-of global sums per value the user group asks for (its context and platform priors).
BY_VALUE_COLUMNS = ("context_type", "platform_name")


@dataclass
class NowState:
    """What a row at ``now`` needs of everyone else's plays (see the module docstring)."""

    #: The moment the state answers for; any target at or after ``after`` gets the same numbers.
    now: int
    #: One past the last history timestamp: every history row is before it.
    after: int
    settings: FeatureSettings
    #: Rows of the history, and the sums of its named per-row values (:func:`row_values`).
    n_rows: int
    totals: dict[str, float]
    #: Per column of ``BY_VALUE_COLUMNS``: its values (sorted), their row counts and sums per name.
    by_value: dict[str, tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]]
    #: Per table group: the group's features for every track a pool can hold (demographics: every cell).
    tables: dict[str, FeatureTable]
    space: TasteSpace
    lists: NeighbourLists
    #: Every artist's first shown genre (the genre group fills genre 0 from it).
    genres: ArtistGenres
    #: The fm group's snapshot at now; None when the state was built without the group (a caller's groups).
    fm: FmNow | None = None

    def missing(self, groups: list[str] | tuple[str, ...]) -> list[str]:
        """Those of ``groups`` this state cannot answer: no now path, or fm when built without it."""
        return [g for g in groups if g not in NOW_GROUPS or (g == "fm" and self.fm is None)]


def row_values(history: History) -> dict[str, np.ndarray]:
    """The named per-row values the groups' global priors sum (every one 0 or 1, so sums are exact).

    The names are the ones the groups pass to :meth:`History.global_asof`: ``y`` listened,
    ``f`` Flow, ``s`` a Flow session start, ``new_<k>`` the user's first play of the item.
    """
    y, flow = history.y, history.flow
    starts = flow_session_starts(history)
    out = {"y": y, "f": flow, "fy": flow * y, "s": starts, "sy": starts * y}
    for key in NOVELTY_KEYS:
        first = first_plays(history, key)
        out[f"new_{key}"], out[f"new_{key}_y"] = first, first * y
    return out


class UserHistory(History):
    """One user's rows as a :class:`History`, with the global priors of the whole history at now.

    The groups' own code runs on it unchanged: their user-side sums see the same rows in
    the same order as in the full history, and :meth:`global_asof` / :meth:`global_asof_in`
    answer from the state's totals, which is what they are for any target after the last
    history row -- and only then: an earlier target is refused.
    """

    def __init__(self, rows: pd.DataFrame, state: NowState) -> None:
        super().__init__(rows, settings=state.settings)
        self.state = state

    def _at_now(self, ts: np.ndarray) -> int:
        ts = np.asarray(ts)
        if len(ts) and int(ts.min()) < self.state.after:
            raise ValueError(f"a UserHistory answers targets after the history only (ts >= {self.state.after})")
        return len(ts)

    def global_asof(self, ts: np.ndarray, values: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        n = self._at_now(ts)
        unknown = [name for name in values if name not in self.state.totals]
        if unknown:
            raise KeyError(f"global sums of {unknown} are not in the now state (features.now.row_values)")
        return np.full(n, float(self.state.n_rows)), {name: np.full(n, self.state.totals[name]) for name in values}

    def global_asof_in(
        self, col: str, qval: np.ndarray, ts: np.ndarray, values: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        self._at_now(ts)
        if col not in self.state.by_value:
            raise KeyError(f"global sums by {col!r} are not in the now state (features.now.BY_VALUE_COLUMNS)")
        vals, counts, sums = self.state.by_value[col]
        pos, found = find_sorted(vals, np.asarray(qval, dtype=np.int64))
        return np.where(found, counts[pos], 0.0), {name: np.where(found, sums[name][pos], 0.0) for name in values}


@dataclass
class FeatureTable:
    """A group's features for a set of keys, looked up by binary search on the first key column."""

    #: Key columns (the first one sorted and unique), each an int64 array.
    keys: dict[str, np.ndarray]
    columns: list[str]
    values: np.ndarray  # float32, one row per key

    @classmethod
    def of(cls, keys: pd.DataFrame, features: pd.DataFrame) -> FeatureTable:
        k = {c: keys[c].to_numpy().astype(np.int64) for c in keys.columns}
        first = next(iter(k.values()))
        order = np.argsort(first, kind="stable")
        if len(first) and (np.diff(first[order]) == 0).any():
            raise ValueError(f"{keys.columns[0]} is not unique in the table's keys")
        return cls({c: v[order] for c, v in k.items()}, list(features.columns), features.to_numpy(np.float32)[order])

    def lookup(self, keys: pd.DataFrame, group: str) -> pd.DataFrame:
        """The rows for each row of ``keys`` (the same columns); every key must be in the table."""
        cols = list(self.keys)
        pos, ok = find_sorted(self.keys[cols[0]], keys[cols[0]].to_numpy().astype(np.int64))
        for c in cols[1:]:
            ok &= self.keys[c][pos] == keys[c].to_numpy().astype(np.int64)
        if not ok.all():
            bad = keys.iloc[int(np.flatnonzero(~ok)[0])].to_dict()
            raise KeyError(f"{group}: no now-state row for {bad}")
        return pd.DataFrame(self.values[pos], columns=self.columns)


def _demographic_cell(rows: pd.DataFrame) -> pd.DataFrame:
    """The demographics table's key of rows: their (genre, age band, gender 1 or other) as one int64."""
    genre = rows["genre_id"].to_numpy().astype(np.int64)
    band = age_band(rows["user_age"].to_numpy())
    gender = (rows["user_gender"].to_numpy() == 1).astype(np.int64)
    return pd.DataFrame({"cell": (genre << 8) | (band << 1) | gender})


def build_state(
    history: History, now: int, catalogue_rows: pd.DataFrame, groups: tuple[str, ...] | list[str] = ()
) -> NowState:
    """Everything :func:`now_features` needs of ``history`` for rows at ``now`` (after every row).

    ``catalogue_rows`` are example rows at ``now`` (test-file layout) for every track the
    pool may propose: the item-side tables are the groups' output for them.  ``groups`` are
    the run's groups: fm gets its state only when it is one of them.
    """
    ts = history.col("ts_listen").astype(np.int64)
    after = int(ts.max()) + 1 if len(ts) else 0
    if now < after:
        raise ValueError(f"now={now} is not after the history (last play at {after - 1})")
    # Each step below builds the as-of indices it needs; released after it, so the peak is one
    # step's, not their sum (at 7.6M rows the build's peak went from 4.8 GB to 3.5 GB).
    values = row_values(history)
    history.release_indices()
    by_value = {}
    for col in BY_VALUE_COLUMNS:
        vals, inv = np.unique(history.col(col).astype(np.int64), return_inverse=True)
        counts = np.bincount(inv, minlength=len(vals)).astype(np.float64)
        by_value[col] = (vals, counts, {"y": np.bincount(inv, weights=history.y, minlength=len(vals))})
    rows = catalogue_rows.reset_index(drop=True)
    if len(rows) and (rows["ts_listen"].to_numpy() != now).any():
        raise ValueError("catalogue rows must be at now")
    tables = {}
    for group, keys in TABLES.items():
        tables[group] = FeatureTable.of(rows[list(keys)], get_group(group)(history, rows))
        history.release_indices()
    # Demographics: every genre of the history x one age of each band x both genders, as Flow plays.
    genres = np.unique(history.col("genre_id").astype(np.int64))
    ages = np.array([0, *AGE_BAND_EDGES], dtype=np.int64)
    g, a, s = (m.ravel() for m in np.meshgrid(genres, ages, np.array([0, 1]), indexing="ij"))
    demo_rows = pd.DataFrame({"genre_id": g, "user_age": a, "user_gender": s, "listen_type": 1, "ts_listen": now})
    out = get_group("demographics")(history, demo_rows)
    tables["demographics"] = FeatureTable.of(_demographic_cell(demo_rows), out)
    return NowState(
        now=int(now),
        after=after,
        settings=history.settings,
        n_rows=len(history),
        totals={name: float(np.sum(v)) for name, v in values.items()},
        by_value=by_value,
        tables=tables,
        space=taste_space(history, now),
        lists=neighbour_lists(history, now),
        genres=artist_genres(history),
        fm=fm_now_state(history, now) if "fm" in groups else None,
    )


def now_features(
    state: NowState, user_rows: pd.DataFrame, targets: pd.DataFrame, groups: list[str]
) -> list[pd.DataFrame]:
    """Each group's features for ``targets`` (one user's rows at now), from ``user_rows`` and the state.

    ``user_rows`` are that user's history rows in the full history's (user, time) order
    (empty for a user the history does not know).  The frames are what
    :func:`pipeline.build_features.compute_group` returns (``example_id`` first).
    """
    unknown = [g for g in groups if g not in NOW_GROUPS]
    if unknown:
        raise ValueError(f"no now state for the feature groups {unknown}: they need a full pass")
    t = targets.reset_index(drop=True)
    users = set(t["user_id"].tolist()) | set(user_rows["user_id"].tolist())
    if len(users) > 1:
        raise ValueError("now_features scores one user's rows, from that user's history rows")
    if len(t) and int(t["ts_listen"].min()) < state.after:
        raise ValueError(f"targets before the end of the history (ts < {state.after}) need a full pass")
    history = UserHistory(user_rows, state)
    frames = []
    for group in groups:
        if group in TABLES:
            out = state.tables[group].lookup(t[list(TABLES[group])], group)
        elif group == "demographics":
            if (t["listen_type"].to_numpy() != 1).any():
                raise ValueError("the demographics now table holds Flow plays only")
            out = state.tables[group].lookup(_demographic_cell(t), group)
        elif group == "cf":
            out = cf_features(history, t, space=state.space)
        elif group == "neighbours":
            out = neighbours_features(history, t, lists=state.lists)
        elif group == "genre":
            out = genre_features(history, t, genres=state.genres)
        elif group == "fm":
            if state.fm is None:
                raise ValueError("the now state was built without the fm group: it needs a full pass")
            out = fm_features(history, t, now=state.fm)
        else:
            out = get_group(group)(history, t)
        out = out.reset_index(drop=True).astype(np.float32)
        out.insert(0, "example_id", t["example_id"].to_numpy())
        frames.append(out)
    return frames

"""Shared helpers of the feature-group tests (``tests/test_features_*.py``).

A test file names its base row once (``BASE = base_row(...)``, the values its hand arithmetic
depends on) and binds the helpers to it, e.g. ``_train = partial(train_frame, BASE)``.  The
assertions stay in the test files: the past-only helpers below only build the histories and
run the group, and hand back what the test compares.  One exception, the check every group's
hand-computed test makes the same way: :func:`assert_features` (columns, dtype, values).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from core.schema import TRAIN_COLUMNS
from features.history import History
from tests.frames import targets_frame, train_frame

#: A feature group: (history, targets) -> one row of features per target.
Group = Callable[[History, pd.DataFrame], pd.DataFrame]
#: Changes a history frame's future: (frame, mask of the rows at or after the target's time, target index).
Change = Callable[[pd.DataFrame, np.ndarray, int], pd.DataFrame]

#: Where every base row starts: user 1's non-Flow play (context 0) of a 2016 release; no ``ts_listen``.
#: Test expectations depend on these values: change one here only with every file that relies on it.
ROW_DEFAULTS: dict[str, int] = {
    "genre_id": 1,
    "media_id": 1,
    "album_id": 1,
    "context_type": 0,
    "release_date": 20160101,
    "platform_name": 0,
    "platform_family": 0,
    "media_duration": 200,
    "listen_type": 0,
    "user_gender": 0,
    "user_id": 1,
    "artist_id": 1,
    "user_age": 25,
    "is_listened": 1,
}


def base_row(**values: int | None) -> dict[str, int]:
    """``ROW_DEFAULTS`` with ``values`` set; ``None`` leaves a column out, so every row must give it."""
    row = {**ROW_DEFAULTS, **values}
    return {k: v for k, v in row.items() if v is not None}


def targets_from_train(base: dict, rows: list[dict]) -> pd.DataFrame:
    """Targets laid out like train rows without the label: ``example_id`` first, then the feature
    columns, ``row_id`` -1, ``round`` 0 and ``sample_id`` -1 (``frames.targets_frame`` has round 1
    and the ids first)."""
    t = train_frame(base, rows).drop(columns="is_listened")
    t.insert(0, "example_id", np.arange(len(t)))
    t["row_id"], t["round"], t["sample_id"] = -1, 0, -1
    return t


def sampled_targets(base: dict, frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` rows of a history frame, drawn at random, as targets (train examples: their own row is in it)."""
    return targets_from_train(base, frame.sample(n, random_state=seed).drop(columns="is_listened").to_dict("records"))


def history(base: dict, rows: list[dict], **history_options: object) -> History:
    """A ``History`` of ``rows`` (``base`` elsewhere), with ``settings`` / ``gap_seconds`` as given."""
    return History(train_frame(base, rows), **history_options)


def group_features(
    group: Group, base: dict, rows: list[dict], targets: list[dict], **history_options: object
) -> pd.DataFrame:
    """Run ``group`` on a history of ``rows`` for ``targets`` (both rows over ``base``, examples-shaped targets)."""
    return group(history(base, rows, **history_options), targets_frame(base, targets))


def assert_features(out: pd.DataFrame, expected: dict[str, float], *, row: int = 0) -> None:
    """``out`` has exactly ``expected``'s columns in that order, all float32, and ``row`` equals its values (rtol 1e-6)."""
    assert list(out.columns) == list(expected)
    assert all(out[c].dtype == np.float32 for c in out.columns)
    for col, want in expected.items():
        np.testing.assert_allclose(out[col].iloc[row], want, rtol=1e-6, err_msg=col)


def logit(p: float) -> float:
    """log(p / (1 - p)), for hand arithmetic in log-odds."""
    return float(np.log(p / (1 - p)))


# --- past only ---------------------------------------------------------------------


def future_changed(
    group: Group, frame: pd.DataFrame, targets: pd.DataFrame, change: Change, **history_options: object
) -> tuple[pd.DataFrame, Iterator[tuple[int, pd.DataFrame]]]:
    """The group on the whole history, and a lazy run over the targets.

    Returns ``(base, runs)``: ``base`` has the features of every target on ``frame``; ``runs``
    yields ``(i, got)``, ``got`` the features of target ``i`` alone on ``change(frame, fut, i)``,
    where ``fut`` marks the rows at or after its time.  The caller asserts ``got`` equals row ``i``
    of ``base``.
    """
    base = group(History(frame, **history_options), targets)

    def runs() -> Iterator[tuple[int, pd.DataFrame]]:
        for i in range(len(targets)):
            fut = frame["ts_listen"].to_numpy() >= targets["ts_listen"].iloc[i]
            one = targets.iloc[[i]].reset_index(drop=True)
            yield i, group(History(change(frame, fut, i), **history_options), one)

    return base, runs()


#: How ``mutate_future`` may change the future of a session history.
MUTATIONS = ["delete", "relabel", "move"]


def random_sessions(base: dict, start: int, seed: int) -> pd.DataFrame:
    """300 plays of users 0-3 from ``start`` on, gaps within and across sessions, some broken clocks and ties."""
    rng = np.random.default_rng(seed)
    n = 300
    ts = start + np.cumsum(rng.choice([5, 60, 200, 700, 5000], size=n))
    ts[rng.random(n) < 0.03] = rng.choice([1, 79, 315532800 + 5])
    ts[rng.random(n) < 0.1] = start + 3000  # ties
    rows = {
        "user_id": rng.integers(0, 4, n),
        "ts_listen": ts,
        "is_listened": rng.integers(0, 2, n),
        "listen_type": rng.integers(0, 2, n),
    }
    return train_frame(base, [dict(zip(rows, v, strict=True)) for v in zip(*rows.values(), strict=True)])


def session_targets(base: dict, frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """25 rows of ``frame`` as (examples-shaped) targets, the first moved to an unseen user 9."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(frame), 25, replace=False)
    targets = targets_frame(base, frame.iloc[pick].drop(columns="is_listened").to_dict("records"))
    targets.loc[0, "user_id"] = 9  # an unseen user
    return targets


def mutate_future(frame: pd.DataFrame, fut: np.ndarray, target: int, *, mutation: str) -> pd.DataFrame:
    """A ``Change`` (``target`` unused): delete the ``fut`` rows, relabel them (label, Flow, user) or move them 7 s later."""
    mut = frame.copy()
    if mutation == "delete":
        mut = mut[~fut]
    elif mutation == "relabel":
        mut.loc[fut, "is_listened"] = 1 - mut.loc[fut, "is_listened"]
        mut.loc[fut, "listen_type"] = 1 - mut.loc[fut, "listen_type"]
        mut.loc[fut, "user_id"] = (mut.loc[fut, "user_id"] + 1) % 4
    else:
        mut.loc[fut, "ts_listen"] = mut.loc[fut, "ts_listen"] + 7
    return mut


def random_catalogue(
    base: dict,
    start: int,
    seed: int,
    *,
    broken_ts: int,
    n_media: int,
    n_users: int,
    flow_share: float | None,
    extra_target: dict,
    n: int = 400,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` plays from ``start`` on of ``n_media`` tracks (3 an album, 6 an artist, 4 genres) by ``n_users`` users.

    Some clocks are ``broken_ts``; with ``flow_share`` None no row sets ``listen_type``.  The targets
    are 30 of the rows plus ``extra_target`` over the first row at the latest time.
    """
    rng = np.random.default_rng(seed)
    ts = start + np.cumsum(rng.integers(0, 400, n))
    ts[rng.random(n) < 0.03] = broken_ts
    media = rng.integers(0, n_media, n)
    rows = []
    for i in range(n):
        row = {
            "user_id": int(rng.integers(0, n_users)),
            "ts_listen": int(ts[i]),
            "media_id": int(media[i]),
            "album_id": int(media[i] // 3),
            "artist_id": int(media[i] // 6),
            "genre_id": int(media[i] % 4),
        }
        if flow_share is not None:
            row["listen_type"] = int(rng.random() < flow_share)
        row["is_listened"] = int(rng.random() < 0.65)
        rows.append(row)
    picks = rng.choice(n, 30, replace=False)
    targets = [rows[i] for i in picks] + [{**rows[0], **extra_target, "ts_listen": int(ts.max())}]
    return train_frame(base, rows), targets_frame(base, targets)


def change_future(
    frame: pd.DataFrame,
    fut: np.ndarray,
    target: int,
    *,
    seed: int,
    flip: tuple[str, ...],
    permute: tuple[str, ...],
    shift_ts: int = 0,
    reverse_extra_users: bool = False,
) -> pd.DataFrame:
    """A ``Change`` (``target`` unused): alter the ``fut`` rows every way a past-only group must ignore.

    ``flip`` the 0/1 columns, ``permute`` the others among the future rows, move each row up to
    ``shift_ts`` s later (if given), drop every second one and append copies of ten future rows
    (their users reversed if ``reverse_extra_users``); then shuffle every row (seeded by ``seed``,
    as the permutations are) and restore the train dtypes.
    """
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for col in flip:
        out.loc[fut, col] = 1 - out.loc[fut, col]
    for col in permute:
        out.loc[fut, col] = rng.permutation(out.loc[fut, col].to_numpy())
    if shift_ts:
        out.loc[fut, "ts_listen"] = out.loc[fut, "ts_listen"] + rng.integers(0, shift_ts, fut.sum()).astype(np.int32)
    extra = out[fut].head(10).copy()
    if reverse_extra_users:
        extra["user_id"] = extra["user_id"].iloc[::-1].to_numpy()
    out = pd.concat([out.drop(index=np.flatnonzero(fut)[::2]), extra], ignore_index=True)
    return out.sample(frac=1.0, random_state=seed).reset_index(drop=True).astype(TRAIN_COLUMNS)


def redraw_future(
    frame: pd.DataFrame,
    fut: np.ndarray,
    target: int,
    *,
    rng: np.random.Generator,
    draws: dict[str, tuple[int, int]],
    drop_every: int = 2,
    extra: int = 0,
    extra_later: int = 0,
    extra_user: int | None = None,
    shuffle: bool = False,
) -> pd.DataFrame:
    """A ``Change``: flip the label of the ``fut`` rows and draw the ``draws`` columns anew from ``rng``.

    Each column is drawn uniformly in ``[low, high)``, in its own dtype and in the order of ``draws``
    (``rng`` runs on across targets); then every ``drop_every``-th future row is dropped.  With ``extra``, that many future rows come back ``extra_later`` s later
    (as ``extra_user`` if given); with ``shuffle``, the rows are shuffled (seeded by ``target``).
    """
    changed = frame.copy()
    changed.loc[fut, "is_listened"] = 1 - changed.loc[fut, "is_listened"]
    for col, (low, high) in draws.items():
        changed.loc[fut, col] = rng.integers(low, high, fut.sum()).astype(changed[col].dtype)
    kept = changed.drop(index=np.flatnonzero(fut)[::drop_every])
    if extra:
        more = changed[fut].head(extra).assign(ts_listen=lambda d: d["ts_listen"] + extra_later)
        if extra_user is not None:
            more = more.assign(user_id=extra_user)
        kept = pd.concat([kept, more], ignore_index=True)
    if shuffle:
        kept = kept.sample(frac=1.0, random_state=target).reset_index(drop=True)
    return kept

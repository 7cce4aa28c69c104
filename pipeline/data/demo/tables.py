"""The generated data set (``DemoData``) and the file layout of its rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.schema import SAMPLE_ID, TARGET
from pipeline.data.demo.catalogue import _Catalogue
from pipeline.data.demo.users import _Users


@dataclass(frozen=True)
class DemoData:
    """The generated files' contents: ``train`` and ``test`` in schema order, ``answers`` per test row."""

    train: pd.DataFrame
    test: pd.DataFrame
    answers: pd.DataFrame
    params: dict[str, Any]


def _table(
    cat: _Catalogue,
    users: _Users,
    columns: dict[str, np.dtype],
    *,
    user: np.ndarray,
    media: np.ndarray,
    ts: np.ndarray,
    ctx: np.ndarray,
    flow: np.ndarray,
    device: np.ndarray,
    listened: np.ndarray | None = None,
    sample_id: np.ndarray | None = None,
    order: np.ndarray | None = None,
) -> pd.DataFrame:
    """The rows in the file layout ``columns`` (narrow dtypes, checked to fit), optionally reordered."""
    album = cat.media_album[media]
    cols: dict[str, np.ndarray] = {
        "genre_id": cat.album_genre_shown[album],
        "ts_listen": ts,
        "media_id": cat.media_id[media],
        "album_id": cat.album_id[album],
        "context_type": ctx,
        "release_date": cat.album_release[album],
        "platform_name": device // 3,
        "platform_family": device % 3,
        "media_duration": cat.media_duration[media],
        "listen_type": flow.astype(np.int64),
        "user_gender": users.gender[user],
        "user_id": user,
        "artist_id": cat.artist_id[cat.media_artist[media]],
        "user_age": users.age[user],
    }
    if listened is not None:
        cols[TARGET] = listened
    if sample_id is not None:
        cols[SAMPLE_ID] = sample_id
    out = {}
    for name, dtype in columns.items():
        arr = np.asarray(cols[name])
        info = np.iinfo(dtype)
        if len(arr) and (arr.min() < info.min or arr.max() > info.max):
            raise AssertionError(f"demo column {name} does not fit {dtype}")
        arr = arr.astype(dtype)
        out[name] = arr if order is None else arr[order]
    return pd.DataFrame(out, copy=False)

"""The DSG17 file layout: column names, order and the narrow dtype each column is stored as."""

from __future__ import annotations

import numpy as np

#: Feature columns shared by train.csv and test.csv, in the order of the real files.
FEATURE_COLUMNS: dict[str, np.dtype] = {
    "genre_id": np.dtype("int32"),
    "ts_listen": np.dtype("int32"),
    "media_id": np.dtype("int32"),
    "album_id": np.dtype("int32"),
    "context_type": np.dtype("int16"),
    "release_date": np.dtype("int32"),
    "platform_name": np.dtype("int8"),
    "platform_family": np.dtype("int8"),
    "media_duration": np.dtype("int32"),
    "listen_type": np.dtype("int8"),
    "user_gender": np.dtype("int8"),
    "user_id": np.dtype("int32"),
    "artist_id": np.dtype("int32"),
    "user_age": np.dtype("int16"),
}
TARGET = "is_listened"
SAMPLE_ID = "sample_id"

TRAIN_COLUMNS: dict[str, np.dtype] = {**FEATURE_COLUMNS, TARGET: np.dtype("int8")}
TEST_COLUMNS: dict[str, np.dtype] = {SAMPLE_ID: np.dtype("int32"), **FEATURE_COLUMNS}

#: Identifier columns: every one is a non-negative id.
ID_COLUMNS = ("genre_id", "media_id", "album_id", "artist_id", "user_id")

#: Timestamps before this (2010-01-01 UTC) are broken clocks (the real data has 1, 8, 79,
#: 865 and Jan 1980): kept as rows, but no hour, weekday or gap is read from them.
BROKEN_CLOCK_BEFORE = 1262304000

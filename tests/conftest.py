"""Shared test fixtures.

Data-contract fixtures (``dsg_*``): tiny, deterministic DSG17 train/test tables kept as
text cells, so a test can break any single cell, and a writer that renders them as CSV
bytes with a chosen line ending, BOM, quoting and column order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.schema import TEST_COLUMNS, TRAIN_COLUMNS

#: column -> cell texts, in the column order of the real file.
DsgTable = dict[str, list[str]]


def _dsg_table(kind: str, n: int = 3) -> DsgTable:
    """A valid ``kind`` ("train" or "test") table of ``n`` rows; row i is predictable from i."""
    columns = TRAIN_COLUMNS if kind == "train" else TEST_COLUMNS
    rows = {
        "sample_id": lambda i: i,
        "genre_id": lambda i: (0, 50, 2744)[i % 3],
        "ts_listen": lambda i: 1480000000 + 60 * i,
        "media_id": lambda i: 683078 + i,
        "album_id": lambda i: 82356 + i,
        "context_type": lambda i: (1, 5, 20)[i % 3],
        "release_date": lambda i: 20021008,
        "platform_name": lambda i: i % 3,
        "platform_family": lambda i: 0,
        "media_duration": lambda i: 222 + i,
        "listen_type": lambda i: i % 2,
        "user_gender": lambda i: (i // 2) % 2,
        "user_id": lambda i: i // 2,
        "artist_id": lambda i: 2076,
        "user_age": lambda i: 18 + i % 13,
        "is_listened": lambda i: (i + 1) % 2,
    }
    return {c: [str(rows[c](i)) for i in range(n)] for c in columns}


def _dsg_frame(table: DsgTable, kind: str) -> pd.DataFrame:
    """The frame ``read_train`` / ``read_test`` must return for a valid ``table``."""
    columns = TRAIN_COLUMNS if kind == "train" else TEST_COLUMNS
    return pd.DataFrame({c: np.array([int(v) for v in table[c]], dtype=dt) for c, dt in columns.items()})


def _dsg_csv(
    table: DsgTable,
    *,
    columns: Sequence[str] | None = None,
    newline: str = "\n",
    bom: bool = False,
    quote: bool = False,
    final_newline: bool = True,
) -> bytes:
    """Render ``table`` as CSV bytes (UTF-8); ``columns`` picks and orders the columns (extras allowed)."""
    columns = list(table) if columns is None else list(columns)
    q = (lambda s: f'"{s}"') if quote else (lambda s: s)
    n = len(next(iter(table.values()))) if table else 0
    lines = [",".join(columns)] + [",".join(q(table[c][i]) for c in columns) for i in range(n)]
    text = newline.join(lines) + (newline if final_newline else "")
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


@pytest.fixture
def dsg_write(tmp_path: Path) -> Callable[..., Path]:
    """Write bytes (or a table, with ``dsg_csv``'s keywords) to ``tmp_path/<name>`` and return the path."""

    def write(content: bytes | DsgTable, name: str = "data.csv", **csv_options: object) -> Path:
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else _dsg_csv(content, **csv_options))
        return path

    return write


@pytest.fixture(scope="session")
def dsg_table() -> Callable[..., DsgTable]:
    """``dsg_table(kind, n=3)``: a valid train or test table of text cells (session-scoped, for hypothesis too)."""
    return _dsg_table


@pytest.fixture(scope="session")
def dsg_frame() -> Callable[[DsgTable, str], pd.DataFrame]:
    """``dsg_frame(table, kind)``: the frame the contract must return for a valid table."""
    return _dsg_frame


@pytest.fixture(scope="session")
def dsg_csv() -> Callable[..., bytes]:
    """``dsg_csv(table, *, columns, newline, bom, quote, final_newline)``: CSV bytes of a table."""
    return _dsg_csv

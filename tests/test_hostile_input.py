"""Property-based tests: odd or malformed CSVs either load exactly right or raise DataError.

Never another exception, never a wrong value.  Each property builds a small valid table,
then changes its layout (column order, extra columns, line endings, BOM, quotes, spaces,
leading zeros, blank lines) or breaks it (bad cells, huge integers, missing columns,
random bytes), and checks the outcome against what the contract promises.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import DataError
from core.schema import TEST_COLUMNS, TRAIN_COLUMNS
from pipeline.data import contract
from pipeline.data.contract import BINARY_COLUMNS, read_test, read_train

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = {"train": (TRAIN_COLUMNS, read_train), "test": (TEST_COLUMNS, read_test)}
_counter = itertools.count()
INTEGER = re.compile(r"-?[0-9]+")
PADDED_INTEGER = re.compile(r"[ \t]*(-?[0-9]+)[ \t]*")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """One directory for every generated file (hypothesis cannot use function-scoped tmp_path)."""
    return tmp_path_factory.mktemp("hostile")


def _write(scratch: Path, data: bytes) -> Path:
    path = scratch / f"case{next(_counter)}.csv"
    path.write_bytes(data)
    return path


def _bounds(column: str, dtype: np.dtype) -> tuple[int, int]:
    return (0, 1) if column in BINARY_COLUMNS else (0, int(np.iinfo(dtype).max))


@st.composite
def valid_tables(draw, kind: str) -> dict[str, list[int]]:
    """1-5 rows of in-range values, boundaries included; sample_id unique."""
    columns, _ = KINDS[kind]
    n = draw(st.integers(1, 5))
    table = {}
    for column, dtype in columns.items():
        lo, hi = _bounds(column, dtype)
        values = st.one_of(st.sampled_from([lo, hi]), st.integers(lo, hi))
        table[column] = draw(st.lists(values, min_size=n, max_size=n, unique=column == "sample_id"))
    return table


@st.composite
def layouts(draw, columns: list[str]) -> dict:
    """Harmless ways to write a file: all of them must load to the same frame."""
    return {
        "order": draw(st.permutations(columns)),
        "extras": draw(st.lists(st.sampled_from(["comment", "x", "Unnamed: 0", ""]), max_size=2, unique=True)),
        "newline": draw(st.sampled_from(["\n", "\r\n", "\r"])),
        "bom": draw(st.booleans()),
        "final_newline": draw(st.booleans()),
        "blank_after": draw(st.sets(st.integers(0, 5), max_size=2)),  # blank line after these lines
        "seed": draw(st.integers(0, 2**16)),
    }


def _cell(text: str, rng: np.random.Generator, *, decorate: bool) -> str:
    """Write one cell, sometimes quoted, padded or with leading zeros (all harmless)."""
    if decorate and INTEGER.fullmatch(text):
        r = rng.random(4)
        if r[0] < 0.3 and not text.startswith("-"):
            text = "0" * int(rng.integers(1, 3)) + text
        if r[1] < 0.3:
            text = " " * int(rng.integers(1, 3)) + text + "\t" * int(rng.integers(0, 2))
        if r[2] < 0.3:
            text = f'"{text}"'
    return text


def _render(cells: dict[str, list[str]], layout: dict, *, decorate: bool = True) -> tuple[bytes, list[int]]:
    """CSV bytes of ``cells`` written per ``layout``, and the file line of each data row."""
    rng = np.random.default_rng(layout["seed"])
    n = len(next(iter(cells.values())))
    extras = {name: [f"note {i}" for i in range(n)] for name in layout["extras"]}
    names = list(layout["order"]) + list(extras)
    table = {**cells, **extras}
    body = [",".join(names)] + [",".join(_cell(table[c][i], rng, decorate=decorate) for c in names) for i in range(n)]
    lines, row_lines = [], []
    for i, line in enumerate(body):
        lines.append(line)
        if i > 0:
            row_lines.append(len(lines))
        if i in layout["blank_after"] and i < len(body) - 1:
            lines.append("")
    text = layout["newline"].join(lines) + (layout["newline"] if layout["final_newline"] else "")
    return (b"\xef\xbb\xbf" if layout["bom"] else b"") + text.encode("utf-8"), row_lines


def _expected(table: dict[str, list[int]], kind: str) -> pd.DataFrame:
    columns, _ = KINDS[kind]
    return pd.DataFrame({c: np.array(table[c], dtype=dt) for c, dt in columns.items()})


def _as_text(table: dict[str, list[int]]) -> dict[str, list[str]]:
    return {c: [str(v) for v in values] for c, values in table.items()}


def _load_or_data_error(read, path: Path, columns: dict) -> pd.DataFrame | None:
    """Read ``path``; any exception but DataError fails the test.  On success the shape must be the schema's."""
    try:
        df = read(path)
    except DataError as exc:
        assert str(path) in str(exc)
        return None
    assert list(df.columns) == list(columns)
    assert df.dtypes.to_dict() == columns
    assert len(df) > 0
    return df


@pytest.mark.parametrize("kind", ["train", "test"])
@SETTINGS
@given(data=st.data())
def test_harmless_layouts_load_exactly(scratch, kind, data):
    columns, read = KINDS[kind]
    table = data.draw(valid_tables(kind))
    layout = data.draw(layouts(list(columns)))
    raw, _ = _render(_as_text(table), layout)
    path = _write(scratch, raw)
    expected = _expected(table, kind)
    pd.testing.assert_frame_equal(read(path), expected)
    with pytest.MonkeyPatch.context() as mp:  # the strict (error-path) reader gives the very same frame
        mp.setattr(contract, "_read_fast", lambda *args: None)
        pd.testing.assert_frame_equal(read(path), expected)


BAD_TOKENS = ["abc", "1.5", "", "  ", '""', "1e3", "0x10", "+5", "NaN", "NA", "null", "5 5", "--1", "١٢", "½", "\x00"]


@pytest.mark.parametrize("kind", ["train", "test"])
@SETTINGS
@given(data=st.data())
def test_one_bad_cell_is_reported_at_its_line(scratch, kind, data):
    columns, read = KINDS[kind]
    table = _as_text(data.draw(valid_tables(kind)))
    layout = data.draw(layouts(list(columns)))
    column = data.draw(st.sampled_from(list(columns)))
    row = data.draw(st.integers(0, len(table[column]) - 1))
    table[column][row] = data.draw(st.sampled_from(BAD_TOKENS) | st.text("abcxyz.,-e", min_size=1, max_size=4))
    if INTEGER.fullmatch(table[column][row]):
        return  # "-0", "00" ...: a valid integer after all; other tests cover those
    raw, row_lines = _render(table, {**layout, "seed": 0}, decorate=False)
    path = _write(scratch, raw)
    with pytest.raises(DataError) as err:
        read(path)
    msg = str(err.value)
    if "," in table[column][row]:  # the comma split the cell: a row-length problem on that line
        assert f"line {row_lines[row]}: " in msg and "wrong number of fields" in msg
    else:
        assert f"column '{column}': 1 value " in msg and f"line {row_lines[row]}: " in msg and "expected" in msg


@pytest.mark.parametrize("kind", ["train", "test"])
@SETTINGS
@given(data=st.data())
def test_integers_of_any_size_load_iff_in_range(scratch, kind, data):
    columns, read = KINDS[kind]
    table = data.draw(valid_tables(kind))
    column = data.draw(st.sampled_from([c for c in columns if c != "sample_id"]))
    row = data.draw(st.integers(0, len(table[column]) - 1))
    value = data.draw(st.integers(-(10**30), 10**30) | st.integers(-300, 70_000) | st.sampled_from([-1, 2**31, 2**63]))
    table[column][row] = value
    layout = data.draw(layouts(list(columns)))
    raw, row_lines = _render(_as_text(table), layout)
    path = _write(scratch, raw)
    lo, hi = _bounds(column, columns[column])
    if lo <= value <= hi:
        pd.testing.assert_frame_equal(read(path), _expected(table, kind))
    else:
        with pytest.raises(DataError, match=rf"column '{column}': 1 value .*line {row_lines[row]}: .*expected"):
            read(path)


@pytest.mark.parametrize("kind", ["train", "test"])
@SETTINGS
@given(data=st.data())
def test_missing_columns_are_named(scratch, kind, data):
    columns, read = KINDS[kind]
    table = data.draw(valid_tables(kind))
    layout = data.draw(layouts(list(columns)))
    dropped = data.draw(st.lists(st.sampled_from(list(columns)), min_size=1, max_size=3, unique=True))
    layout["order"] = [c for c in layout["order"] if c not in dropped]
    raw, _ = _render(_as_text(table), layout)
    path = _write(scratch, raw)
    with pytest.raises(DataError, match="missing required column") as err:
        read(path)
    assert all(f"'{c}'" in str(err.value) for c in columns if c in dropped)


@pytest.mark.parametrize("kind", ["train", "test"])
@SETTINGS
@given(data=st.data())
def test_arbitrary_cell_text_loads_or_raises_data_error(scratch, kind, data):
    columns, read = KINDS[kind]
    table = _as_text(data.draw(valid_tables(kind)))
    column = data.draw(st.sampled_from(list(columns)))
    text = table[column][0] = data.draw(st.text(max_size=8))
    raw, _ = _render(table, data.draw(layouts(list(columns))), decorate=False)
    df = _load_or_data_error(read, _write(scratch, raw), columns)
    if any(ch in text for ch in ',"\r\n'):
        return  # the cell may have changed the row's structure: no crash is all we ask
    match = PADDED_INTEGER.fullmatch(text)
    lo, hi = _bounds(column, columns[column])
    others = {int(v) for v in table[column][1:]}
    if match and lo <= int(match[1]) <= hi and (column != "sample_id" or int(match[1]) not in others):
        assert df is not None and int(df[column].iloc[0]) == int(match[1])
    else:
        assert df is None, f"{text!r} in {column} should have been rejected"


@pytest.mark.parametrize("kind", ["train", "test"])
@SETTINGS
@given(data=st.data())
def test_random_byte_damage_loads_or_raises_data_error(scratch, kind, data):
    columns, read = KINDS[kind]
    raw, _ = _render(_as_text(data.draw(valid_tables(kind))), data.draw(layouts(list(columns))))
    buf = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(buf)))
        junk = data.draw(st.binary(max_size=3) | st.sampled_from([b"\xff", b"\xe9", b"\x00", b'"', b",", b"\r", b"\n"]))
        cut = data.draw(st.integers(0, 3))
        buf[pos : pos + cut] = junk
    _load_or_data_error(read, _write(scratch, bytes(buf)), columns)

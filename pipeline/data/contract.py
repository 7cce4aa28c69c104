"""The DSG17 data contract: read train.csv / test.csv, check every value, return narrow-dtype frames.

``read_train`` and ``read_test`` return exactly the columns of ``schema.TRAIN_COLUMNS`` /
``schema.TEST_COLUMNS``, in that order and with those dtypes, or raise ``DataError`` with
a message that names the file, the column, the first offending lines and what was
expected.  The rules:

- Every value is a plain decimal integer from 0 to the maximum of the column's dtype;
  ``listen_type`` and ``is_listened`` are 0 or 1; ``sample_id`` values are unique.
- Accepted as they come: columns in any order (reordered), extra columns (a WARNING
  names them; they are ignored), Windows line endings, a UTF-8 byte-order mark, quoted
  numbers (``"5"``), leading zeros, and spaces or tabs around a value (ignored, as
  pyarrow does).  Blank lines are skipped.
- Rejected: empty values, decimals, exponents, hex (``0x10``), a leading ``+``, anything
  else that is not an integer, and bytes that are not UTF-8.
- The real data's quirks are not errors (see ``QUIRKS``): broken clocks, placeholder
  release dates, zero durations, genre 0, test users or tracks unseen in train.

Line numbers in messages are lines of the file as a text editor shows them (the header
is line 1), whatever the line endings; blank lines count.

Reading has two paths.  The fast one lets pyarrow parse every column as int64 on all
cores and checks nulls and ranges with vectorised min/max.  If that fails in any way the
strict path re-reads the columns as raw bytes, classifies every value with vectorised
pyarrow regexes and reports the offending lines, or returns the same frame if all is
well after all (an ignored column that looked suspicious, say).
"""

from __future__ import annotations

import csv
import logging
import mmap
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from core.errors import DataError
from core.schema import BROKEN_CLOCK_BEFORE, SAMPLE_ID, TARGET, TEST_COLUMNS, TRAIN_COLUMNS

log = logging.getLogger("contract")

__all__ = [
    "read_train",
    "read_test",
    "read_validated",
    "BINARY_COLUMNS",
    "BROKEN_CLOCK_BEFORE",
    "RELEASE_DATE_PLACEHOLDERS",
    "LINE_CONVENTION",
]

#: Columns whose only values are 0 and 1.
BINARY_COLUMNS = ("listen_type", TARGET)
#: ``release_date`` values that stand for "unknown".
RELEASE_DATE_PLACEHOLDERS = (19000101, 30000101)

#: How every message counts lines.
LINE_CONVENTION = "line numbers are lines of the file, the header being line 1"

_SHOWN = 5  # offending lines quoted per problem
_MAX_PROBLEMS = 12  # problems listed per message
_VALUE_WIDTH = 30  # characters of a bad value quoted before "..."
_HEADER_PEEK = 1 << 20  # a header line longer than this is not a DSG17 header
_SCAN_BLOCK = 1 << 26  # bytes per block when counting lines on the error path


def read_train(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and check a DSG17 train.csv; columns and dtypes exactly as ``schema.TRAIN_COLUMNS``."""
    return read_validated(path, TRAIN_COLUMNS, kind="train")


def read_test(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and check a DSG17 test.csv; columns and dtypes exactly as ``schema.TEST_COLUMNS``."""
    return read_validated(path, TEST_COLUMNS, kind="test")


def read_validated(path: str | os.PathLike[str], columns: Mapping[str, np.dtype], *, kind: str) -> pd.DataFrame:
    """Read the CSV at ``path`` and return ``columns`` (name -> integer dtype) in that order.

    ``kind`` ("train" or "test") only words the messages.  Raises ``DataError`` for
    anything that breaks the contract described in the module docstring.
    """
    path = Path(path)
    header = _read_header(path, columns, kind)
    try:
        arrays = _read_fast(path, header, columns)
        if arrays is None:
            arrays = _read_strict(path, header, columns)
    except OSError as exc:
        raise DataError(f"{path}: could not be read ({exc.strerror or exc}).") from exc
    # The arrays are fresh and owned by this frame, so no copy is needed.
    return pd.DataFrame(arrays, columns=list(columns), copy=False)


# --------------------------------------------------------------------------- header


@dataclass(frozen=True)
class _Header:
    """The header line: names as pyarrow should call every field, and where data starts."""

    arrow_names: list[str]  # one per field; extras renamed so they never clash
    data_offset: int  # byte offset just past the header's line ending


def _read_header(path: Path, columns: Mapping[str, np.dtype], kind: str) -> _Header:
    """Check the file exists and its first line names every required column exactly once."""
    expected = f"the DSG17 {kind} CSV ({len(columns)} columns: {', '.join(columns)})"
    try:
        if path.is_dir():
            raise DataError(f"{path}: is a directory; expected {expected}.")
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(_HEADER_PEEK)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; expected {expected}.") from None
    except OSError as exc:
        raise DataError(f"{path}: could not be read ({exc.strerror or exc}).") from exc
    if size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes); expected {expected}, header line first.")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{path}: line 1 shows the file is UTF-16; expected {expected} encoded as UTF-8.")

    ends = [i for i in (head.find(b"\n"), head.find(b"\r")) if i >= 0]
    if ends:
        end = min(ends)
        data_offset = end + (2 if head[end : end + 2] == b"\r\n" else 1)
    elif size <= len(head):
        end = data_offset = len(head)
    else:
        raise DataError(
            f"{path}: line 1 is longer than {_HEADER_PEEK:,} bytes; expected a header line with {expected}."
        )
    raw = head[:end].removeprefix(b"\xef\xbb\xbf")
    try:
        text = raw.decode("utf-8")
        names = [n.strip() for n in next(csv.reader([text]), [])]
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: line 1 (the header) is not valid UTF-8 (byte {raw[exc.start : exc.start + 1]!r} at "
            f"position {exc.start + 1}); expected {expected}, encoded as UTF-8."
        ) from None
    except csv.Error as exc:
        raise DataError(f"{path}: line 1 (the header) is not a CSV line ({exc}); expected {expected}.") from None
    if not any(names):
        raise DataError(f"{path}: line 1 is blank; expected the header of {expected}.")

    first_seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in columns and name in first_seen:
            raise DataError(
                f"{path}: column '{name}' appears twice in the header on line 1 (fields {first_seen[name] + 1} "
                f"and {i + 1}); expected each column once."
            )
        first_seen.setdefault(name, i)

    missing = [c for c in columns if c not in first_seen]
    if missing:
        raise DataError(_missing_message(path, names, missing, kind, expected))
    extras = [n for n in names if n not in columns]
    if extras:
        shown = ", ".join(f"'{n}'" if n else "'' (unnamed)" for n in extras)
        log.warning("%s: ignoring %d column(s) that are not in the DSG17 %s layout: %s", path, len(extras), kind, shown)
    if data_offset >= size:
        raise DataError(_no_rows(path))
    arrow_names = [n if n in columns and first_seen[n] == i else f"__extra_{i}" for i, n in enumerate(names)]
    return _Header(arrow_names=arrow_names, data_offset=data_offset)


def _missing_message(path: Path, names: list[str], missing: list[str], kind: str, expected: str) -> str:
    """Word a missing-column error, with a hint when the file is plainly the other split or not comma-separated."""
    listed = ", ".join(f"'{c}'" for c in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    has = ", ".join(n[:_VALUE_WIDTH] for n in names[:20]) + (", ..." if len(names) > 20 else "")
    msg = (
        f"{path}: missing required column{'s' if len(missing) > 1 else ''} {listed}; "
        f"the header on line 1 has {len(names)} column(s): {has}. Expected {expected}."
    )
    if kind == "train" and TARGET in missing and SAMPLE_ID in names:
        msg += " It has sample_id and no is_listened: this looks like a test file."
    elif kind == "test" and SAMPLE_ID in missing and TARGET in names:
        msg += " It has is_listened and no sample_id: this looks like a train file."
    elif len(names) == 1:
        for sep in (";", "\t", "|"):
            if sep in names[0]:
                msg += f" The header is separated by {sep!r}; expected commas."
                break
    return msg


# --------------------------------------------------------------------------- fast path


def _bounds(name: str, dtype: np.dtype) -> tuple[int, int]:
    return (0, 1) if name in BINARY_COLUMNS else (0, int(np.iinfo(dtype).max))


def _read_fast(path: Path, header: _Header, columns: Mapping[str, np.dtype]) -> dict[str, np.ndarray] | None:
    """Parse as int64 on all cores and check with min/max; None when anything is off."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        # pyarrow's integer parser also takes hex ("0x1f"); the contract does not.
        if mm.find(b"x", header.data_offset) >= 0 or mm.find(b"X", header.data_offset) >= 0:
            return None
    try:
        table = pacsv.read_csv(
            pa.memory_map(str(path)),
            read_options=pacsv.ReadOptions(column_names=header.arrow_names, skip_rows=1),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.int64() for c in columns},
                include_columns=list(columns),
                null_values=[""],
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowException:
        return None
    if table.num_rows == 0:
        return None
    for name, dtype in columns.items():
        col = table.column(name)
        lo, hi = _bounds(name, dtype)
        mm_ = pc.min_max(col)
        if col.null_count or mm_["min"].as_py() < lo or mm_["max"].as_py() > hi:
            return None
    if SAMPLE_ID in columns and pc.count_distinct(table.column(SAMPLE_ID)).as_py() != table.num_rows:
        return None
    out = {}
    for name, dtype in columns.items():
        out[name] = pc.cast(table.column(name), pa.from_numpy_dtype(dtype)).to_numpy()
        table = table.drop_columns([name])  # free each int64 column as soon as it is narrowed
    return out


# --------------------------------------------------------------------------- strict path


@dataclass
class _Problem:
    """One kind of fault in one column (or in the row structure), with its first offending rows."""

    column: str | None
    what: tuple[str, str]  # (singular, plural), e.g. ("is not an integer", "are not integers")
    expected: str
    count: int
    rows: list[int]  # data-row indices (0-based, blank lines excluded), or file lines when ``lines_known``
    values: list[bytes]
    lines_known: bool = False
    notes: list[str] | None = None  # per shown value, e.g. "same as line 4"


def _read_strict(path: Path, header: _Header, columns: Mapping[str, np.dtype]) -> dict[str, np.ndarray]:
    """Read every required column as raw bytes, classify every value, raise if any is bad."""
    try:
        table = pacsv.read_csv(
            pa.memory_map(str(path)),
            read_options=pacsv.ReadOptions(column_names=header.arrow_names, skip_rows=1),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.binary() for c in columns}, include_columns=list(columns)
            ),
        )
    except pa.ArrowException as exc:
        # Nearly always rows with too few or too many fields.  pyarrow's own invalid-row
        # hook cannot be used to find them: it fails on rows that are not UTF-8.
        problem = _ragged_rows(path, len(header.arrow_names))
        if problem is not None:
            raise DataError(_format_problems(path, [problem], None, None)) from None
        raise DataError(f"{path}: could not be parsed as CSV ({exc}); expected comma-separated integers.") from None
    if table.num_rows == 0:
        raise DataError(_no_rows(path))

    lines = _nonblank_lines(path)
    problems: list[_Problem] = []
    out: dict[str, np.ndarray] = {}
    for name, dtype in columns.items():
        values, found = _check_column(name, dtype, table.column(name))
        problems.extend(found)
        out[name] = values
        table = table.drop_columns([name])
    if SAMPLE_ID in out and not problems:
        problems.extend(_duplicates(SAMPLE_ID, out[SAMPLE_ID], lines))
    if problems:
        raise DataError(_format_problems(path, problems, lines, len(out[next(iter(columns))])))
    return {name: out[name].astype(dtype) for name, dtype in columns.items()}


def _ragged_rows(path: Path, n_fields: int) -> _Problem | None:
    """Lines whose field count differs from the header's (Python's csv module: error path only)."""
    rows: list[int] = []
    texts: list[bytes] = []
    notes: list[str] = []
    count = 0
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh)
        try:
            next(reader, None)  # the header
            for fields in reader:
                if fields and len(fields) != n_fields:
                    count += 1
                    if len(rows) < _SHOWN:
                        rows.append(reader.line_num)
                        texts.append(",".join(fields).encode("utf-8", "surrogateescape"))
                        notes.append(f"{len(fields)} field{'s' if len(fields) != 1 else ''}")
        except csv.Error as exc:
            if count:  # report what was found; the rest of the file is unreadable anyway
                return _ragged(rows, texts, notes, count, n_fields)
            raise DataError(
                f"{path}: line {reader.line_num} is not a CSV line ({exc}); expected comma-separated integers."
            ) from None
    return _ragged(rows, texts, notes, count, n_fields) if count else None


def _ragged(rows: list[int], texts: list[bytes], notes: list[str], count: int, n_fields: int) -> _Problem:
    return _Problem(
        column=None,
        what=("has the wrong number of fields", "have the wrong number of fields"),
        expected=f"{n_fields} comma-separated fields on every line, as in the header",
        count=count,
        rows=rows,
        values=texts,
        lines_known=True,
        notes=notes,
    )


def _no_rows(path: Path) -> str:
    return f"{path}: the header on line 1 is followed by no data rows; expected at least one row."


def _check_column(name: str, dtype: np.dtype, raw: pa.ChunkedArray) -> tuple[np.ndarray, list[_Problem]]:
    """Parse one column of raw bytes to int64 and list what is wrong with it, all vectorised."""
    lo, hi = _bounds(name, dtype)
    binary = name in BINARY_COLUMNS
    expected = "0 or 1" if binary else f"an integer from {lo} to {hi} ({dtype.name})"

    # Most columns of a faulty file are clean: one regex and a cast settle those.
    if pc.all(pc.match_substring_regex(raw, r"^[0-9]{1,18}$")).as_py():
        values = pc.cast(pc.cast(raw, pa.string()), pa.int64()).to_numpy()
        if values.min() >= lo and values.max() <= hi:
            return values, []

    trimmed = pc.replace_substring_regex(raw, r"^[ \t]+|[ \t]+$", "")
    empty = pc.equal(pc.binary_length(trimmed), 0).to_numpy()
    is_int = pc.match_substring_regex(trimmed, r"^-?[0-9]+$").to_numpy()
    canon = pc.replace_substring_regex(trimmed, r"^(-?)0+([0-9])", r"\1\2")  # drop leading zeros
    fits = pc.match_substring_regex(canon, r"^-?[0-9]{1,18}$")  # 18 digits always fit int64
    values = pc.cast(pc.cast(pc.if_else(fits, canon, b"0"), pa.string()), pa.int64()).to_numpy()
    fits = fits.to_numpy()
    huge = is_int & ~fits  # more digits than int64 holds: too large or too small for any column
    huge_neg = huge & pc.starts_with(canon, "-").to_numpy()

    checks: list[tuple[np.ndarray, tuple[str, str]]] = [
        (empty, ("is empty", "are empty")),
        (~is_int & ~empty, ("is not an integer", "are not integers")),
    ]
    if binary:
        checks.append(((fits & ((values < 0) | (values > 1))) | huge, ("is not 0 or 1", "are not 0 or 1")))
    else:
        checks.append(((fits & (values < lo)) | huge_neg, ("is negative", "are negative")))
        checks.append(
            (
                (fits & (values > hi)) | (huge & ~huge_neg),
                (f"is too large for {dtype.name}", f"are too large for {dtype.name}"),
            )
        )
    problems = []
    for mask, what in checks:
        idx = np.flatnonzero(mask)
        if idx.size:
            first = idx[:_SHOWN]
            shown = raw.take(pa.array(first)).to_pylist()
            problems.append(_Problem(name, what, expected, int(idx.size), first.tolist(), shown))
    return values, problems


def _duplicates(name: str, values: np.ndarray, lines: np.ndarray | None) -> list[_Problem]:
    """Rows whose ``name`` value appeared on an earlier row."""
    _, first_index, inverse = np.unique(values, return_index=True, return_inverse=True)
    first_of_row = first_index[inverse]
    dup = np.flatnonzero(first_of_row != np.arange(values.size))
    if not dup.size:
        return []
    shown = dup[:_SHOWN]
    return [
        _Problem(
            name,
            ("is a repeat of an earlier row", "are repeats of earlier rows"),
            f"each {name} once",
            int(dup.size),
            shown.tolist(),
            [str(values[i]).encode() for i in shown],
            notes=[f"same as line {_line_of(lines, int(first_of_row[i]) + 1)}" for i in shown],
        )
    ]


# --------------------------------------------------------------------------- line numbers


def _nonblank_lines(path: Path) -> np.ndarray:
    """1-based numbers of the file's non-blank lines (header included), as pyarrow counts rows.

    A line ends at LF, CRLF or a lone CR, as in pyarrow; blank lines are the ones pyarrow
    skips.  Scanned in blocks with numpy, so memory stays small even on the error path.
    """
    size = path.stat().st_size
    buf = np.memmap(path, dtype=np.uint8, mode="r", shape=(size,))
    ends_list = []
    for start in range(0, size, _SCAN_BLOCK):
        block = buf[start : start + _SCAN_BLOCK + 1]  # one byte more to see the LF after a CR
        stop = min(_SCAN_BLOCK, size - start)
        lf = np.flatnonzero(block[:stop] == 10)
        cr = np.flatnonzero(block[:stop] == 13)
        after = np.append(block[1:], 0)[cr] if cr.size else cr
        lone_cr = cr[after != 10]
        ends_list.append(np.sort(np.concatenate([lf, lone_cr])) + start)
    ends = np.concatenate(ends_list) if ends_list else np.empty(0, dtype=np.int64)
    starts = np.concatenate([[0], ends + 1])
    stops = np.append(ends, size)
    length = stops - starts
    # A CRLF line's content stops before its CR.
    crlf = np.zeros(length.size, dtype=bool)
    has_end = np.flatnonzero(stops[:-1] > starts[:-1])
    crlf[has_end] = (buf[stops[has_end]] == 10) & (buf[stops[has_end] - 1] == 13)
    length = length - crlf
    del buf
    return np.flatnonzero(length > 0) + 1


def _line_of(lines: np.ndarray | None, row: int) -> int:
    """File line of pyarrow row ``row`` (0 = header); a best guess if quoted line breaks upset the count."""
    if lines is not None and 0 <= row < lines.size:
        return int(lines[row])
    return row + 1


# --------------------------------------------------------------------------- messages


def _show(value: bytes | None) -> str:
    """A bad value as it appears in the file, short and printable."""
    if value is None:
        return "''"
    text = value.decode("utf-8", "surrogateescape")
    note = " (not valid UTF-8)" if any("\udc80" <= ch <= "\udcff" for ch in text) else ""
    if len(text) > _VALUE_WIDTH:
        text = text[:_VALUE_WIDTH] + "..."
    # Undecodable bytes show as \xNN, as in the file, rather than as surrogates.
    return re.sub(r"\\udc([89a-f][0-9a-f])", r"\\x\1", repr(text)) + note


def _format_problems(path: Path, problems: list[_Problem], lines: np.ndarray | None, n_rows: int | None) -> str:
    """One line per problem: column, count, first lines with their values, what was expected."""
    off = lines is not None and n_rows is not None and lines.size != n_rows + 1
    head = f"{path}: invalid data ({LINE_CONVENTION}"
    head += "; some may be off: the file has line breaks inside quoted values):" if off else "):"
    out = [head]
    for p in problems[:_MAX_PROBLEMS]:
        where = [(r if p.lines_known else _line_of(lines, r + 1)) for r in p.rows]
        notes = p.notes or [""] * len(where)
        cited = ", ".join(
            f"line {ln}: {_show(v)}" + (f" ({note})" if note else "")
            for ln, v, note in zip(where, p.values, notes, strict=True)
        )
        more = f" (first {len(where)} of {p.count:,} shown)" if p.count > len(where) else ""
        subject = f"column '{p.column}': " if p.column else ""
        verb = p.what[0] if p.count == 1 else p.what[1]
        noun = ("value" if p.column else "line") if p.count == 1 else ("values" if p.column else "lines")
        out.append(f"  - {subject}{p.count:,} {noun} {verb}: {cited}{more}; expected {p.expected}")
    if len(problems) > _MAX_PROBLEMS:
        out.append(f"  - ... and {len(problems) - _MAX_PROBLEMS} more problems")
    return "\n".join(out)

"""The DSG17 data contract (pipeline.data.contract) and the ingest CLI (pipeline.data.ingest)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import DataError, PipelineError
from core.schema import TEST_COLUMNS, TRAIN_COLUMNS
from pipeline.data import contract, ingest
from pipeline.data.contract import read_test, read_train
from pipeline.data.quirks import QUIRKS, summarize

ROOT = Path(__file__).resolve().parents[1]
REAL_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsg17_test_real.csv"


def _bad_value_pattern(path: Path, column: str, line: int, value: str, expected: str) -> str:
    """A message must name the file, the column, the line with its value, and the expectation."""
    return (
        rf"(?s){re.escape(str(path))}.*column '{column}'.*line {line}: {re.escape(repr(value))}"
        rf".*expected {re.escape(expected)}"
    )


# --------------------------------------------------------------------------- valid files


def test_read_train_returns_schema_columns_dtypes_and_values(dsg_table, dsg_frame, dsg_write):
    table = dsg_table("train", n=4)
    df = read_train(dsg_write(table))
    assert list(df.columns) == list(TRAIN_COLUMNS)
    assert df.dtypes.to_dict() == TRAIN_COLUMNS
    pd.testing.assert_frame_equal(df, dsg_frame(table, "train"))
    assert df["user_age"].tolist() == [18, 19, 20, 21]


def test_read_test_returns_schema_columns_dtypes_and_values(dsg_table, dsg_frame, dsg_write):
    table = dsg_table("test", n=3)
    df = read_test(dsg_write(table))
    assert list(df.columns) == list(TEST_COLUMNS)
    assert df.dtypes.to_dict() == TEST_COLUMNS
    pd.testing.assert_frame_equal(df, dsg_frame(table, "test"))
    assert df["sample_id"].tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"newline": "\r\n"}, id="crlf"),
        pytest.param({"newline": "\r"}, id="cr-only"),
        pytest.param({"bom": True}, id="bom"),
        pytest.param({"quote": True}, id="quoted-numbers"),
        pytest.param({"bom": True, "newline": "\r\n", "quote": True}, id="bom-crlf-quoted"),
        pytest.param({"final_newline": False}, id="no-final-newline"),
        pytest.param({"columns": list(reversed(TRAIN_COLUMNS))}, id="reversed-columns"),
    ],
)
def test_harmless_layout_variations_load_identically(dsg_table, dsg_frame, dsg_write, options):
    table = dsg_table("train", n=3)
    pd.testing.assert_frame_equal(read_train(dsg_write(table, **options)), dsg_frame(table, "train"))


def test_shuffled_columns_are_put_back_in_schema_order(dsg_table, dsg_frame, dsg_write):
    table = dsg_table("test", n=3)
    shuffled = list(np.random.default_rng(0).permutation(list(TEST_COLUMNS)))
    df = read_test(dsg_write(table, columns=shuffled))
    assert list(df.columns) == list(TEST_COLUMNS)
    pd.testing.assert_frame_equal(df, dsg_frame(table, "test"))


def test_spaces_tabs_and_leading_zeros_around_values_are_accepted(dsg_table, dsg_frame, dsg_write):
    table = dsg_table("train", n=3)
    padded = {c: [f" \t{v} ", f"00{v}", f'" {v}"'] for c, values in table.items() for v in [values[0]]}
    expected = {c: [values[0]] * 3 for c, values in table.items()}
    pd.testing.assert_frame_equal(read_train(dsg_write(padded)), dsg_frame(expected, "train"))


def test_blank_lines_are_skipped(dsg_table, dsg_frame, dsg_write):
    table = dsg_table("train", n=2)
    header, row0, row1 = ",".join(table), ",".join(v[0] for v in table.values()), ",".join(v[1] for v in table.values())
    text = "\n".join([header, row0, "", "", row1, "", ""])
    pd.testing.assert_frame_equal(read_train(dsg_write(text.encode())), dsg_frame(table, "train"))


def test_extra_column_is_ignored_with_a_warning_naming_it(dsg_table, dsg_frame, dsg_write, caplog):
    table = dsg_table("train", n=2)
    with_extra = {"comment": ["hello", "x"], **table}
    path = dsg_write(with_extra)
    with caplog.at_level(logging.WARNING, logger="contract"):
        df = read_train(path)
    pd.testing.assert_frame_equal(df, dsg_frame(table, "train"))
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "'comment'" in record.getMessage() and str(path) in record.getMessage()


def test_real_data_quirks_are_not_errors(dsg_table, dsg_frame, dsg_write):
    table = dsg_table("train", n=6)
    table["ts_listen"] = ["1", "8", "315532800", "1262303999", "1480000000", "1480000060"]  # broken clocks
    table["release_date"] = ["19000101", "30000101", "20161231", "20021008", "20021008", "20021008"]
    table["media_duration"][0] = "0"
    table["genre_id"][1] = "0"
    df = read_train(dsg_write(table))
    pd.testing.assert_frame_equal(df, dsg_frame(table, "train"))


def test_real_test_file_loads_with_sample_ids_in_order():
    if not REAL_TEST.exists():
        pytest.skip(f"the real DSG17 test file is not on this machine ({REAL_TEST})")
    df = read_test(REAL_TEST)
    assert len(df) == 19_918
    assert df.dtypes.to_dict() == TEST_COLUMNS
    assert np.array_equal(df["sample_id"].to_numpy(), np.arange(19_918))
    assert df["user_id"].is_unique
    assert int((df["listen_type"] == 1).sum()) == 19_917


# --------------------------------------------------------------------------- file-level errors


def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}: file not found; expected the DSG17 train CSV"):
        read_train(path)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(DataError, match="is a directory; expected the DSG17 test CSV"):
        read_test(tmp_path)


def test_empty_file(dsg_write):
    path = dsg_write(b"")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}: the file is empty \(0 bytes\); expected"):
        read_train(path)


@pytest.mark.parametrize("tail", ["", "\n", "\r\n", "\n\n\n"], ids=["bare", "lf", "crlf", "blank-lines"])
def test_header_only(dsg_write, tail):
    path = dsg_write((",".join(TRAIN_COLUMNS) + tail).encode())
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}: the header on line 1 is followed by no data rows"):
        read_train(path)


def test_blank_first_line(dsg_table, dsg_csv, dsg_write):
    path = dsg_write(b"\n" + dsg_csv(dsg_table("train")))
    with pytest.raises(DataError, match="line 1 is blank; expected the header"):
        read_train(path)


@pytest.mark.parametrize("column", ["genre_id", "user_id", "listen_type", "user_age"])
def test_missing_required_column(dsg_table, dsg_write, column):
    table = dsg_table("train")
    path = dsg_write(table, columns=[c for c in table if c != column])
    pattern = rf"{re.escape(str(path))}: missing required column '{column}'; the header on line 1 has 14 column"
    with pytest.raises(DataError, match=pattern + r".*Expected the DSG17 train CSV \(15 columns"):
        read_train(path)


def test_train_file_without_is_listened_is_recognised_as_a_test_file(dsg_table, dsg_write):
    path = dsg_write(dsg_table("test"))
    with pytest.raises(DataError, match=r"missing required column 'is_listened'.*this looks like a test file"):
        read_train(path)


def test_test_file_without_sample_id_is_recognised_as_a_train_file(dsg_table, dsg_write):
    path = dsg_write(dsg_table("train"))
    with pytest.raises(DataError, match=r"missing required column 'sample_id'.*this looks like a train file"):
        read_test(path)


def test_semicolon_separated_file_gets_a_hint(dsg_table, dsg_write):
    table = dsg_table("train")
    text = ";".join(table) + "\n" + ";".join(v[0] for v in table.values()) + "\n"
    with pytest.raises(DataError, match="The header is separated by ';'; expected commas"):
        read_train(dsg_write(text.encode()))


def test_required_column_twice_in_header(dsg_table, dsg_csv, dsg_write):
    table = dsg_table("train", n=1)
    text = dsg_csv(table).decode().splitlines()
    path = dsg_write(f"{text[0]},user_id\n{text[1]},7\n".encode())
    with pytest.raises(DataError, match=r"column 'user_id' appears twice in the header on line 1 \(fields 12 and 16\)"):
        read_train(path)


def test_non_utf8_header(dsg_table, dsg_csv, dsg_write):
    path = dsg_write(b"\xff" + dsg_csv(dsg_table("train")))
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}: line 1 \(the header\) is not valid UTF-8"):
        read_train(path)


def test_utf16_file(dsg_table, dsg_write):
    text = "\n".join([",".join(TRAIN_COLUMNS), ",".join(v[0] for v in dsg_table("train").values())]) + "\n"
    path = dsg_write(text.encode("utf-16"))
    with pytest.raises(DataError, match="the file is UTF-16; expected .* encoded as UTF-8"):
        read_train(path)


# --------------------------------------------------------------------------- value errors


@pytest.mark.parametrize(
    ("column", "value", "problem", "expected"),
    [
        ("user_age", "abc", "1 value is not an integer", "an integer from 0 to 32767 (int16)"),
        ("media_id", "1.5", "1 value is not an integer", "an integer from 0 to 2147483647 (int32)"),
        ("genre_id", "1e3", "1 value is not an integer", "an integer from 0 to 2147483647 (int32)"),
        ("genre_id", "0x10", "1 value is not an integer", "an integer from 0 to 2147483647 (int32)"),
        ("genre_id", "+5", "1 value is not an integer", "an integer from 0 to 2147483647 (int32)"),
        ("genre_id", "NA", "1 value is not an integer", "an integer from 0 to 2147483647 (int32)"),
        ("user_id", "", "1 value is empty", "an integer from 0 to 2147483647 (int32)"),
        ("user_id", "  ", "1 value is empty", "an integer from 0 to 2147483647 (int32)"),
        ("album_id", "99999999999", "1 value is too large for int32", "an integer from 0 to 2147483647 (int32)"),
        ("ts_listen", "9" * 25, "1 value is too large for int32", "an integer from 0 to 2147483647 (int32)"),
        ("platform_name", "300", "1 value is too large for int8", "an integer from 0 to 127 (int8)"),
        ("context_type", "40000", "1 value is too large for int16", "an integer from 0 to 32767 (int16)"),
        ("user_id", "-1", "1 value is negative", "an integer from 0 to 2147483647 (int32)"),
        ("artist_id", "-" + "9" * 25, "1 value is negative", "an integer from 0 to 2147483647 (int32)"),
        ("ts_listen", "-5", "1 value is negative", "an integer from 0 to 2147483647 (int32)"),
        ("is_listened", "2", "1 value is not 0 or 1", "0 or 1"),
        ("is_listened", "-1", "1 value is not 0 or 1", "0 or 1"),
        ("listen_type", "7", "1 value is not 0 or 1", "0 or 1"),
    ],
)
def test_bad_value_names_file_column_line_value_and_expectation(dsg_table, dsg_write, column, value, problem, expected):
    table = dsg_table("train", n=3)
    table[column][1] = value  # data row 2 = line 3 of the file
    path = dsg_write(table)
    with pytest.raises(DataError, match=_bad_value_pattern(path, column, 3, value, expected)) as err:
        read_train(path)
    assert f"column '{column}': {problem}: line 3: " in str(err.value)
    assert "line numbers are lines of the file, the header being line 1" in str(err.value)


@pytest.mark.parametrize(
    "options",
    [{"newline": "\r\n"}, {"bom": True}, {"quote": True}, {"newline": "\r", "bom": True, "quote": True}],
    ids=["crlf", "bom", "quoted", "cr-bom-quoted"],
)
def test_line_numbers_survive_crlf_bom_and_quotes(dsg_table, dsg_write, options):
    table = dsg_table("test", n=5)
    table["user_age"][3] = "x1"
    path = dsg_write(table, **options)
    with pytest.raises(DataError, match=_bad_value_pattern(path, "user_age", 5, "x1", "an integer from 0")):
        read_test(path)


def test_line_numbers_count_blank_lines(dsg_table, dsg_write):
    table = dsg_table("train", n=3)
    table["media_duration"][2] = "3.5"
    lines = [",".join(table)] + [",".join(v[i] for v in table.values()) for i in range(3)]
    text = "\r\n".join([lines[0], "", lines[1], "", "", lines[2], lines[3]]) + "\r\n"  # row 3 on line 7
    path = dsg_write(text.encode())
    with pytest.raises(DataError, match=_bad_value_pattern(path, "media_duration", 7, "3.5", "an integer")):
        read_train(path)


def test_non_utf8_value_names_file_and_line(dsg_table, dsg_csv, dsg_write):
    table = dsg_table("train", n=3)
    table["artist_id"][0] = "@@"
    path = dsg_write(dsg_csv(table).replace(b"@@", b"\xe9\xff"))
    with pytest.raises(
        DataError, match=r"column 'artist_id': 1 value is not an integer: line 2: '\\xe9\\xff' \(not valid UTF-8\)"
    ):
        read_train(path)


def test_many_bad_values_show_the_first_five(dsg_table, dsg_write):
    table = dsg_table("train", n=9)
    table["user_gender"] = ["a"] * 7 + ["0", "1"]
    path = dsg_write(table)
    with pytest.raises(DataError) as err:
        read_train(path)
    msg = str(err.value)
    assert "column 'user_gender': 7 values are not integers: line 2: 'a', line 3: 'a'" in msg
    assert "line 6: 'a' (first 5 of 7 shown)" in msg and "line 7:" not in msg


def test_every_bad_column_is_reported_in_one_message(dsg_table, dsg_write):
    table = dsg_table("train", n=3)
    table["genre_id"][0] = "x"
    table["is_listened"][2] = "5"
    with pytest.raises(DataError) as err:
        read_train(dsg_write(table))
    lines = str(err.value).splitlines()
    assert lines[1].startswith("  - column 'genre_id': 1 value is not an integer: line 2: 'x'")
    assert lines[2].startswith("  - column 'is_listened': 1 value is not 0 or 1: line 4: '5'")


def test_duplicate_sample_id(dsg_table, dsg_write):
    table = dsg_table("test", n=4)
    table["sample_id"][2] = "0"
    path = dsg_write(table)
    pattern = rf"{re.escape(str(path))}.*column 'sample_id': 1 value is a repeat of an earlier row: "
    with pytest.raises(DataError, match=rf"(?s){pattern}line 4: '0' \(same as line 2\); expected each sample_id once"):
        read_test(path)


@pytest.mark.parametrize(("cells", "fields"), [(14, 14), (16, 16)])
def test_row_with_wrong_number_of_fields(dsg_table, dsg_csv, dsg_write, cells, fields):
    table = dsg_table("train", n=3)
    lines = dsg_csv(table).decode().splitlines()
    values = lines[2].split(",")
    lines[2] = ",".join(values[:cells] if cells < 15 else values + ["9"])
    path = dsg_write(("\n".join(lines) + "\n").encode())
    with pytest.raises(DataError, match=rf"1 line has the wrong number of fields: line 3: '.*' \({fields} fields\)"):
        read_train(path)


def test_strict_path_agrees_with_fast_path(dsg_table, dsg_write, monkeypatch):
    table = dsg_table("train", n=5)
    path = dsg_write(table, newline="\r\n", bom=True)
    fast = read_train(path)
    monkeypatch.setattr(contract, "_read_fast", lambda *args: None)
    pd.testing.assert_frame_equal(read_train(path), fast)


def test_hex_in_an_ignored_column_still_loads(dsg_table, dsg_frame, dsg_write):
    table = dsg_table("test", n=2)
    path = dsg_write({**table, "note": ["0x10", "xyz"]})
    pd.testing.assert_frame_equal(read_test(path), dsg_frame(table, "test"))


# --------------------------------------------------------------------------- summary


def test_summarize_counts_each_quirk(dsg_table, dsg_frame):
    train_t = dsg_table("train", n=6)
    train_t["ts_listen"] = ["1", "315532800", "1480000000", "1480000000", "1480000000", "1480000000"]
    train_t["release_date"] = ["20991231", "19000101", "30000101", "20161125", "20161124", "20161123"]
    train_t["media_duration"] = ["0", "0", "1", "1", "1", "1"]
    train_t["genre_id"] = ["0", "0", "0", "1", "1", "1"]
    train_t["listen_type"] = ["1", "1", "0", "0", "0", "0"]
    train_t["is_listened"] = ["1", "1", "1", "1", "0", "0"]
    test_t = dsg_table("test", n=2)
    test_t["user_id"] = ["0", "77"]
    test_t["media_id"] = [train_t["media_id"][0], "42"]
    test_t["ts_listen"] = ["865", "1480000000"]
    s = summarize(dsg_frame(train_t, "train"), dsg_frame(test_t, "test"))

    assert s["train"] == {
        "rows": 6,
        "users": 3,
        "is_listened_1": 4,
        "is_listened_0": 2,
        "is_listened_mean": round(4 / 6, 6),
        "flow_share": round(2 / 6, 6),
    }
    assert s["test"] == {
        "rows": 2,
        "users": 2,
        "flow_share": 0.5,
        "users_unseen_in_train": 1,
        "media_unseen_in_train_rows": 1,
    }
    q = s["quirks"]
    assert set(q) == set(QUIRKS)
    # 1480000000 is 2016-11-24 UTC: only the 20161125 release is later; row 0's clock is broken.
    assert (q["play_before_release"]["train_rows"], q["play_before_release"]["test_rows"]) == (1, 0)
    assert (q["broken_clock"]["train_rows"], q["broken_clock"]["test_rows"]) == (2, 1)
    assert q["release_date_19000101"]["train_rows"] == 1 and q["release_date_30000101"]["train_rows"] == 1
    assert q["media_duration_0"]["train_rows"] == 2 and q["genre_id_0"]["train_rows"] == 3
    assert q["test_media_unseen"] == {
        **QUIRKS["test_media_unseen"],
        "train_rows": None,
        "train_share": None,
        "test_rows": 1,
        "test_share": 0.5,
    }
    assert all(v["handling"] and v["description"] for v in q.values())


# --------------------------------------------------------------------------- ingest CLI


def test_ingest_writes_validated_parquet_and_leaves_the_csv_alone(dsg_table, dsg_frame, dsg_write, tmp_path):
    table = dsg_table("test", n=3)
    src = dsg_write(table, name="test.csv")
    before = src.read_bytes()
    out = tmp_path / "interim" / "test.parquet"
    ingest.main(["--split", "test", "--src", str(src), "--out", str(out)])
    pd.testing.assert_frame_equal(pd.read_parquet(out), dsg_frame(table, "test"))
    assert src.read_bytes() == before


def test_ingest_summary_writes_json_with_demo_flag(dsg_table, dsg_frame, tmp_path):
    train_pq, test_pq, out = tmp_path / "train.parquet", tmp_path / "test.parquet", tmp_path / "summary.json"
    dsg_frame(dsg_table("train", n=4), "train").to_parquet(train_pq)
    dsg_frame(dsg_table("test", n=2), "test").to_parquet(test_pq)
    ingest.main(["--summary", "--train", str(train_pq), "--test", str(test_pq), "--out", str(out)])
    summary = json.loads(out.read_text())
    assert summary["train"]["rows"] == 4 and summary["test"]["rows"] == 2
    assert isinstance(summary["demo"], bool) and "broken_clock" in summary["quirks"]


def test_ingest_summary_without_parquet_says_what_to_run(tmp_path):
    with pytest.raises(
        PipelineError, match=r"train.parquet is missing: run `python -m pipeline.data.ingest --split train`"
    ):
        ingest.write_summary(tmp_path / "train.parquet", tmp_path / "test.parquet", tmp_path / "s.json")


def test_ingest_refuses_to_overwrite_its_input(dsg_table, dsg_write):
    src = dsg_write(dsg_table("train"))
    with pytest.raises(PipelineError, match="is the input file itself"):
        ingest.ingest("train", src, src)


def test_cli_bad_file_exits_2_with_a_clean_message_and_no_output(dsg_table, dsg_write, tmp_path):
    table = dsg_table("train", n=3)
    table["user_age"][2] = "abc"
    src = dsg_write(table, name="train.csv")
    out = tmp_path / "out" / "train.parquet"
    env = {**os.environ, "DSG_DATA": str(tmp_path / "data")}
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.data.ingest", "--split", "train", "--src", str(src), "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"ERROR: {src}: invalid data" in proc.stderr
    assert "column 'user_age': 1 value is not an integer: line 4: 'abc'" in proc.stderr
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no temporary file left either

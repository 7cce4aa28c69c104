"""Ingest stage: validate a raw DSG17 CSV and cache it as parquet, or summarise the cached data.

``python -m pipeline.data.ingest --split train`` reads ``data/raw/train.csv`` through the data
contract (``pipeline.data.contract``) and writes ``data/interim/train.parquet``;
``--split test`` does the same for test.csv.  ``--summary`` reads both parquet files and
writes ``data/interim/data_summary.json`` for the report.  ``--src`` / ``--out`` (and
``--train`` / ``--test`` for the summary) override the paths from ``core.config``.

The raw file is only read.  Outputs are written atomically, so a failed run leaves no
output file (or the previous one) behind.  Contract violations exit with status 2 and a
message naming the file, column and lines.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from core import config
from core.errors import PipelineError, run_cli
from core.io import write_json, write_parquet
from pipeline.data.contract import read_test, read_train
from pipeline.data.quirks import summarize

log = logging.getLogger("ingest")

__all__ = ["ingest", "write_summary", "main"]

_READERS = {"train": read_train, "test": read_test}
_DEFAULTS = {"train": (config.RAW_TRAIN, config.TRAIN_PARQUET), "test": (config.RAW_TEST, config.TEST_PARQUET)}


def ingest(split: str, src: Path, out: Path) -> pd.DataFrame:
    """Validate the ``split`` CSV at ``src`` and write it to ``out`` as parquet; return the frame."""
    if out.resolve() == src.resolve():
        raise PipelineError(f"--out {out} is the input file itself; the raw CSV is never overwritten.")
    start = time.perf_counter()
    df = _READERS[split](src)
    read_s = time.perf_counter() - start
    write_parquet(df, out)
    log.info(
        "%s: %s rows x %d columns read and checked in %.1f s, written to %s in %.1f s",
        src,
        f"{len(df):,}",
        df.shape[1],
        read_s,
        out,
        time.perf_counter() - start - read_s,
    )
    return df


def write_summary(train_path: Path, test_path: Path, out: Path) -> dict[str, Any]:
    """Summarise the validated train and test parquet files into the JSON the report shows."""
    for split, path in (("train", train_path), ("test", test_path)):
        if not path.exists():
            raise PipelineError(f"{path} is missing: run `python -m pipeline.data.ingest --split {split}` first.")
    start = time.perf_counter()
    summary = summarize(pd.read_parquet(train_path), pd.read_parquet(test_path))
    summary["demo"] = config.is_demo_data()
    write_json(summary, out)
    log.info("data summary written to %s in %.1f s", out, time.perf_counter() - start)
    return summary


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.data.ingest", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--split", choices=sorted(_READERS), help="validate this raw CSV and write it as parquet")
    mode.add_argument("--summary", action="store_true", help="write the data summary JSON from both parquet files")
    parser.add_argument("--src", type=Path, help="raw CSV (default: data/raw/<split>.csv)")
    parser.add_argument("--out", type=Path, help="output file (default: data/interim/<split>.parquet or the summary)")
    parser.add_argument("--train", type=Path, help="with --summary: validated train parquet")
    parser.add_argument("--test", type=Path, help="with --summary: validated test parquet")
    args = parser.parse_args(argv)
    if args.summary and args.src:
        parser.error("--src goes with --split; with --summary use --train and --test")
    if args.split and (args.train or args.test):
        parser.error("--train and --test go with --summary; with --split use --src")
    return args


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    args = _parse_args(argv)
    if args.summary:
        write_summary(
            args.train or config.TRAIN_PARQUET, args.test or config.TEST_PARQUET, args.out or config.DATA_SUMMARY
        )
    else:
        src, out = _DEFAULTS[args.split]
        ingest(args.split, args.src or src, args.out or out)


if __name__ == "__main__":
    run_cli(main)

"""Writing the demo files: train.csv and test.csv, the hidden answers and the ``.demo`` marker.

The marker beside the CSVs holds the generator's parameters and a fingerprint of each
CSV, so every stage can say "demo data".  Nothing is written over files the generator
did not write itself, and over earlier demo files only with ``replace_demo``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from core import config
from core.errors import PipelineError
from core.io import atomic_path, write_csv, write_json
from pipeline.data.demo.tables import DemoData


def _write_ints(df: pd.DataFrame, path: Path) -> None:
    """Plain-integer CSV with a bare header and ``\\n`` endings, fast and byte-stable."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write((",".join(df.columns) + "\n").encode())
        pacsv.write_csv(
            table, fh, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none", batch_size=1 << 16)
        )


_DATA_FILES = ("train.csv", "test.csv")
_fingerprint = config.file_fingerprint  # one implementation, shared with config.is_demo_data
demo_files_intact = config.is_demo_data


def check_out_dir(out_dir: Path, *, replace_demo: bool) -> None:
    """Refuse to write where the user's own data is, or over demo data unless asked to."""
    out_dir = Path(out_dir)
    present = [name for name in _DATA_FILES if (out_dir / name).exists()]
    if not present:
        return
    marker = out_dir / config.DEMO_MARKER.name
    names = " and ".join(present)
    if not marker.exists():
        raise PipelineError(
            f"{out_dir} already holds {names}, not written by the demo generator (no {marker.name} marker): "
            "refusing to touch what looks like your own data. Move it away to use demo data, or pick another --out-dir."
        )
    if not demo_files_intact(out_dir):
        raise PipelineError(
            f"{out_dir} has the demo marker, but {names} changed since the generator wrote them (your own files?): "
            f"refusing to overwrite them. If they are yours, delete {marker} so every stage treats them as real data."
        )
    if not replace_demo:
        raise PipelineError(
            f"{out_dir} already holds demo data. Rebuild it with `make demo-data` (or --replace-demo), "
            "or remove the files first."
        )


def write_demo(data: DemoData, out_dir: Path, answers_path: Path, *, replace_demo: bool = False) -> None:
    """Write the marker, train.csv, test.csv and the answers, each atomically.

    The marker is written first (without fingerprints) so that a run stopped half-way still
    leaves a folder every stage knows as demo data; it is rewritten with the files'
    fingerprints at the end.
    """
    out_dir = Path(out_dir)
    check_out_dir(out_dir, replace_demo=replace_demo)
    marker = out_dir / config.DEMO_MARKER.name
    write_json({**data.params, "files": {}}, marker)
    for name, df in zip(_DATA_FILES, (data.train, data.test), strict=True):
        _write_ints(df, out_dir / name)
    write_csv(data.answers, answers_path, float_format="%.6f")
    write_json({**data.params, "files": {name: _fingerprint(out_dir / name) for name in _DATA_FILES}}, marker)

"""``make clean``: remove what the pipeline generated, say what, and keep everything else.

Removed: validated parquet, examples and features (data/interim, data/processed), model
artifacts (models/artifacts), the report and metrics in reports/, and the demo files in
data/raw *only if they are still the untouched demo files*.  Never removed: your own
data/raw files, submissions/ and runs/ (earlier results are never deleted), .venv.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from core import config

__all__ = ["generated_paths", "main"]

_KEEP = {".gitkeep", ".gitignore"}


def _children(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return sorted(p for p in folder.iterdir() if p.name not in _KEEP and p.name != "templates")


def generated_paths() -> list[Path]:
    """Every path ``make clean`` would remove, in a stable order."""
    paths = _children(config.INTERIM) + _children(config.PROCESSED) + _children(config.MODELS_DIR)
    paths += _children(config.REPORTS)
    if config.is_demo_data():
        paths += [p for p in (config.RAW_TRAIN, config.RAW_TEST, config.DEMO_MARKER) if p.exists()]
        paths += _children(config.DEMO)
    return paths


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description="Remove what the pipeline generated (never your data, submissions or runs)."
    )
    ap.add_argument("-n", "--dry-run", action="store_true", help="only list what would be removed")
    args = ap.parse_args(argv)
    demo = config.is_demo_data()
    paths = generated_paths()
    if not paths:
        print("make clean: nothing generated to remove.")
        return
    print("make clean would remove:" if args.dry_run else "make clean removes:")
    for p in paths:
        print(f"  {p.relative_to(config.ROOT) if p.is_relative_to(config.ROOT) else p}{'/' if p.is_dir() else ''}")
        if args.dry_run:
            continue
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()
    kept = [str(config.RAW.relative_to(config.ROOT)) + " (your files)"] if not demo else []
    kept += ["submissions/", "runs/", ".venv/"]
    print("kept: " + ", ".join(kept))


if __name__ == "__main__":
    main()

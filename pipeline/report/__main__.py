"""``python -m pipeline.report [--out ...] [--run-id ...]``: see ``pipeline.report.cli``."""

from core.errors import run_cli
from pipeline.report.cli import main

if __name__ == "__main__":
    run_cli(main)

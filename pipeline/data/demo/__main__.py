"""``python -m pipeline.data.demo [--users N] [--seed S] [--out-dir D] [--answers F] [--replace-demo]``.

Generates the demo set and writes it (see the package docstring); the Makefile's data
targets call it.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from core import config
from core.errors import run_cli
from core.settings import FeatureSettings, load
from pipeline.data.demo.files import check_out_dir, write_demo
from pipeline.data.demo.generator import generate
from pipeline.data.demo.summary import summarize

log = logging.getLogger("demo")

__all__ = ["main"]


def main() -> None:
    """Parse the options, refuse a bad --out-dir before any work, then generate, write and log a summary."""
    ap = argparse.ArgumentParser(description="Generate the realistic DSG17-shaped demo data set.")
    ap.add_argument("--users", type=int, default=2000, help="number of users (19918 = the real size, ~7.5M rows)")
    ap.add_argument("--seed", type=int, default=None, help="default: SEED from the environment (42)")
    ap.add_argument("--out-dir", type=Path, default=config.RAW, help="where train.csv, test.csv and .demo go")
    ap.add_argument("--answers", type=Path, default=config.DEMO_ANSWERS, help="hidden answers of the test rows")
    ap.add_argument(
        "--latent-taste",
        type=float,
        default=0.0,
        help="weight (per sd) of a user x artist taste that shows in the listens only (default 0: none)",
    )
    ap.add_argument(
        "--replace-demo", action="store_true", help="rebuild over earlier demo files (never over your own data)"
    )
    args = ap.parse_args()
    if args.seed is None:
        args.seed = load(FeatureSettings).seed
    check_out_dir(args.out_dir, replace_demo=args.replace_demo)  # before the work, not after
    t0 = time.perf_counter()
    data = generate(args.users, seed=args.seed, latent_taste=args.latent_taste)
    log.info(
        "generated %s train rows, %s test rows in %.1fs",
        f"{len(data.train):,}",
        f"{len(data.test):,}",
        time.perf_counter() - t0,
    )
    write_demo(data, args.out_dir, args.answers, replace_demo=args.replace_demo)
    s = summarize(data)
    log.info(
        "demo data in %s (%d users, seed %d): listen rate %.3f (Flow %.3f, non-Flow %.3f), Flow share %.2f, "
        "oracle test AUC %.3f; %.1fs",
        args.out_dir,
        args.users,
        args.seed,
        s["listen_rate"],
        s["listen_rate_flow"],
        s["listen_rate_non_flow"],
        s["flow_share"],
        s["oracle_auc_test"],
        time.perf_counter() - t0,
    )


if __name__ == "__main__":
    run_cli(main)

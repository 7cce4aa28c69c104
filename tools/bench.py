"""``make bench``: time every stage of ``make features train submit`` at growing data sizes.

For each size a scratch copy of the project (sources only, the same ``.venv``) gets a
fresh demo data set, then each stage runs as its own ``make`` call so that wall time,
CPU time and peak memory are measured per stage:

* ``ingest``   CSV -> validated parquet (train, test, summary)
* ``features`` examples and every feature group
* ``train``    selection, ablation, bake-off with Optuna, report
* ``submit``   the submission

Results go to ``reports/bench.json`` and to the table between the ``bench`` markers in
README.md.  Targets (issue 5, 2 cores / 24 GiB): ingest < 20 s, the whole chain < 15 min,
peak memory < 6 GB, at the competition's full size (19,918 users, ~7.5M rows).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core import config
from core.errors import run_cli
from core.io import write_json, write_text

log = logging.getLogger("bench")

__all__ = ["run_bench", "bench_table", "copy_project"]

#: users -> approximate train rows of the demo generator: 0.75M, 2.5M, 7.5M
DEFAULT_SIZES = (2_000, 6_640, 19_918)
STAGES = {
    "ingest": ["data/interim/train.parquet", "data/interim/test.parquet", "data/interim/data_summary.json"],
    "features": ["features"],
    "train": ["train"],
    "submit": ["submit"],
}
TARGETS = {"ingest_seconds": 20.0, "total_seconds": 15 * 60.0, "peak_rss_gb": 6.0}

# Runs a command and prints the wall time, CPU time and peak RSS of it and its children.
_MEASURE = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter(); rc = subprocess.call(sys.argv[1:]); wall = time.perf_counter() - t\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print('@@BENCH ' + json.dumps({'rc': rc, 'wall': wall, 'cpu': u.ru_utime + u.ru_stime,"
    " 'peak_rss_mb': u.ru_maxrss / 1024}))\n"
)


#: The code packages (with their templates), copied into each scratch project.
CODE_DIRS = ("core", "pipeline", "features", "models", "tools")


def copy_project(dest: Path) -> None:
    """Copy the working tree's code (not its data or results) into ``dest`` and share ``.venv``."""
    names = [
        p.relative_to(config.ROOT)
        for d in CODE_DIRS
        for p in (config.ROOT / d).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and "artifacts" not in p.parts
    ]
    names += [Path(n) for n in ("Makefile", "requirements.txt", "pyproject.toml")]
    for name in names:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(config.ROOT / name, dest / name)
    for d in ("data/raw", "submissions", "reports", "runs", "models/artifacts"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    (dest / ".venv").symlink_to(config.ROOT / ".venv")


def _measure(cmd: list[str], cwd: Path, env: dict[str, str], log_path: Path) -> dict:
    with open(log_path, "a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(
            [sys.executable, "-c", _MEASURE, *cmd],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=fh,
            text=True,
            check=False,
        )
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@BENCH ")]
    with open(log_path, "a") as fh:
        fh.write("\n".join(ln for ln in proc.stdout.splitlines() if not ln.startswith("@@BENCH ")))
    if not line:
        raise RuntimeError(f"benchmark command failed to report: {cmd}; see {log_path}")
    res = json.loads(line[-1][len("@@BENCH ") :])
    if res["rc"] != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed (exit {res['rc']}); see {log_path}")
    return res


def run_bench(sizes: tuple[int, ...], *, keep: bool = False) -> dict:
    """Run the chain at each size in a scratch folder and return the measurements."""
    results = []
    for users in sizes:
        scratch = Path(tempfile.mkdtemp(prefix=f"dsg17-bench-{users}-"))
        log_path = scratch / "bench.log"
        try:
            copy_project(scratch)
            env = {**os.environ, "CI": os.environ.get("CI", "")}
            env.pop("DSG_DATA", None)
            py = str(scratch / ".venv" / "bin" / "python")
            log.info("size %d users: generating demo data in %s", users, scratch)
            gen = _measure([py, "-m", "pipeline.data.demo", "--users", str(users)], scratch, env, log_path)
            rows = sum(1 for _ in open(scratch / "data/raw/train.csv", "rb")) - 1
            stages = {}
            for stage, targets in STAGES.items():
                log.info("size %d users (%s train rows): stage %s ...", users, f"{rows:,}", stage)
                stages[stage] = _measure(["make", "--no-print-directory", *targets], scratch, env, log_path)
                log.info(
                    "  %s: %.1fs wall, %.1fs CPU, peak %.0f MB",
                    stage,
                    stages[stage]["wall"],
                    stages[stage]["cpu"],
                    stages[stage]["peak_rss_mb"],
                )
            total = sum(s["wall"] for s in stages.values())
            results.append(
                {
                    "users": users,
                    "train_rows": rows,
                    "demo_generation": gen,
                    "stages": stages,
                    "total_seconds": total,
                    "peak_rss_gb": max(s["peak_rss_mb"] for s in stages.values()) / 1024,
                }
            )
        finally:
            if keep:
                log.info("kept scratch folder %s", scratch)
            else:
                shutil.rmtree(scratch, ignore_errors=True)
    full = max(results, key=lambda r: r["train_rows"])
    checks = {
        "ingest_seconds": full["stages"]["ingest"]["wall"] <= TARGETS["ingest_seconds"],
        "total_seconds": full["total_seconds"] <= TARGETS["total_seconds"],
        "peak_rss_gb": full["peak_rss_gb"] <= TARGETS["peak_rss_gb"],
    }
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "targets": TARGETS,
        "meets_targets": checks,
        "sizes": results,
    }


def bench_table(bench: dict) -> str:
    """Markdown table of a bench result (wall seconds per stage, total, peak memory)."""
    lines = [
        "| users | train rows | ingest (s) | features (s) | train (s) | submit (s) | total (s) | CPU (s) | peak RSS (GB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in bench["sizes"]:
        s = r["stages"]
        cpu = sum(x["cpu"] for x in s.values())
        lines.append(
            f"| {r['users']:,} | {r['train_rows']:,} | {s['ingest']['wall']:.1f} | {s['features']['wall']:.1f} | "
            f"{s['train']['wall']:.1f} | {s['submit']['wall']:.1f} | {r['total_seconds']:.1f} | {cpu:.1f} | "
            f"{r['peak_rss_gb']:.2f} |"
        )
    ok = ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in bench["meets_targets"].items())
    lines.append("")
    lines.append(
        f"Measured {bench['date']} on {bench['machine']['cpus']} cores, Python {bench['machine']['python']}. "
        f"Targets at full size: {ok}."
    )
    return "\n".join(lines)


def _update_readme(table: str) -> None:
    readme = config.ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    new, n = re.subn(
        r"(<!-- bench:start -->\n).*?(<!-- bench:end -->)",
        lambda m: m.group(1) + table + "\n" + m.group(2),
        text,
        flags=re.S,
    )
    if n:
        write_text(new, readme)


def main() -> None:
    ap = argparse.ArgumentParser(description="Time every stage at growing data sizes.")
    ap.add_argument(
        "--users",
        type=int,
        nargs="+",
        default=list(DEFAULT_SIZES),
        help="demo sizes in users (default: 2000 6640 19918, ~0.75M, 2.5M, 7.5M rows)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the scratch folders")
    ap.add_argument("--no-readme", action="store_true", help="do not rewrite the README table")
    args = ap.parse_args()
    bench = run_bench(tuple(args.users), keep=args.keep)
    write_json(bench, config.REPORTS / "bench.json")
    table = bench_table(bench)
    print(table)
    if not args.no_readme:
        _update_readme(table)


if __name__ == "__main__":
    run_cli(main)

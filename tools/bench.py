"""``make bench``: time ``make features train submit`` at growing data sizes, with the split per stage.

For each size a scratch copy of the project (sources only, the same ``.venv``) gets a
fresh demo data set, then:

1. **the chain**: ``make features train submit`` as a user runs it; its wall time, CPU
   time and peak memory (the largest process), and every stage process's own wall and
   CPU seconds and peak memory (each stage appends a line to ``$DSG_PROFILE``, see
   :func:`core.errors.run_cli`): ingest, examples, each feature group (train and test
   side), select, tune, ablation, train, report, submit.  The bake-off's per-model fit
   and predict seconds come from the run's ``metrics.json``;
2. **nothing changed**: the same command again, which must only check;
3. **a recommendation**: ``make recommend USER=<the test file's first user> N=10``, as a user
   asks for one after the chain (the whole command: start-up, model, state, scoring);
4. **the quick loop**: a feature group's code touched (``features/time.py``), then
   ``MODELS=lightgbm make train submit``: the change, one model, the score.

Results go to ``reports/bench.json`` and to the tables between the ``bench`` markers in
README.md.  Targets (2 cores, 24 GiB): the chain within 600 s at full size (19,918 users,
~7.6M rows) and 150 s at ~0.75M rows, 6 GB peak memory, the quick loop within a quarter of
the chain, a rerun with nothing changed within a few seconds, and a recommendation for one
user within 5 s at every size.
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
from core.io import read_json, write_json, write_text

log = logging.getLogger("bench")

__all__ = ["run_bench", "bench_table", "stage_table", "copy_project", "stage_name", "MAKE_JOB_VARS"]

#: A parent make's jobserver variables: a make started as a user would is started without them.
MAKE_JOB_VARS = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")

#: users -> approximate train rows of the demo generator: 0.75M, 2.5M, 7.6M
DEFAULT_SIZES = (2_000, 6_640, 19_918)
FULL_USERS = 19_918
TARGETS = {
    "chain_seconds_full": 600.0,
    "chain_seconds_small": 150.0,
    "peak_rss_gb": 6.0,
    "quick_loop_share": 0.25,
    "rerun_seconds": 10.0,
    "recommend_seconds": 5.0,
}

#: The code packages (with their templates), copied into each scratch project.
CODE_DIRS = ("core", "pipeline", "features", "models", "tools")

# Runs a command and prints its wall time, and the CPU time and largest RSS of its children.
_MEASURE = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter(); rc = subprocess.call(sys.argv[1:]); wall = time.perf_counter() - t\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print('@@BENCH ' + json.dumps({'rc': rc, 'wall': wall, 'cpu': u.ru_utime + u.ru_stime,"
    " 'peak_rss_mb': u.ru_maxrss / 1024}))\n"
)


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


def stage_name(record: dict) -> str:
    """A short name for a profiled stage process: ``features:user/train``, ``ingest:train``, ``train``..."""
    module = (record.get("module") or record["argv"][0]).removeprefix("pipeline.").removeprefix("data.")
    args = record["argv"][1:]

    def opt(name: str) -> str | None:
        return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else None

    if module == "build_features":
        return f"features:{opt('--group')}/{opt('--split')}"
    if module in ("ingest", "examples"):
        return f"{module}:{opt('--split') or 'summary'}"
    if module == "report.__main__":
        return "report"
    if module == "recommend_state":  # built by make features
        return "features:recommend_state"
    return module


def _profile(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{"stage": stage_name(r), **{k: r[k] for k in ("wall", "cpu", "peak_rss_mb")}} for r in rows]


def _one_size(users: int, scratch: Path) -> dict:
    log_path = scratch / "bench.log"
    copy_project(scratch)
    env = {**os.environ, "CI": os.environ.get("CI", "")}
    env.pop("DSG_DATA", None)
    for name in MAKE_JOB_VARS:  # under `make bench`: a fresh make, with its own -j2
        env.pop(name, None)
    py = str(scratch / ".venv" / "bin" / "python")
    log.info("size %d users: generating demo data in %s", users, scratch)
    gen = _measure([py, "-m", "pipeline.data.demo", "--users", str(users)], scratch, env, log_path)
    rows = sum(1 for _ in open(scratch / "data/raw/train.csv", "rb")) - 1
    make = ["make", "--no-print-directory"]

    prof = scratch / "profile-chain.jsonl"
    log.info("size %d users (%s train rows): make features train submit ...", users, f"{rows:,}")
    chain = _measure([*make, "features", "train", "submit"], scratch, {**env, "DSG_PROFILE": str(prof)}, log_path)
    stages = _profile(prof)
    metrics = read_json(scratch / "reports" / "metrics.json")
    models = [
        {"model": r["model"], "fit": r["fit_seconds"], "predict": r["predict_seconds"], "rows": r["rows_used"]}
        for r in metrics["ranking"]
    ]
    log.info("  chain: %.1fs wall, %.1fs CPU, peak %.0f MB", chain["wall"], chain["cpu"], chain["peak_rss_mb"])

    rerun = _measure([*make, "features", "train", "submit"], scratch, env, log_path)
    log.info("  again with nothing changed: %.1fs", rerun["wall"])

    import pandas as pd  # only here: the bench's own start-up stays light

    user = int(pd.read_parquet(scratch / "data/interim/test.parquet", columns=["user_id"])["user_id"].iloc[0])
    recommend = _measure([*make, "recommend", f"USER={user}", "N=10"], scratch, env, log_path)
    log.info("  make recommend USER=%d N=10: %.1fs", user, recommend["wall"])

    os.utime(scratch / "features" / "time.py")  # "change a feature"
    quick_prof = scratch / "profile-quick.jsonl"
    quick = _measure(
        [*make, "train", "submit"], scratch, {**env, "MODELS": "lightgbm", "DSG_PROFILE": str(quick_prof)}, log_path
    )
    log.info("  quick loop (a group changed, MODELS=lightgbm make train submit): %.1fs", quick["wall"])
    return {
        "users": users,
        "train_rows": rows,
        "demo_generation": gen,
        "chain": chain,
        "stages": stages,
        "models": models,
        "train_timings": metrics.get("timings", {}),
        "n_train_examples": metrics.get("n_train"),
        "rerun": rerun,
        "recommend": {**recommend, "user": user},
        "quick_loop": {**quick, "stages": _profile(quick_prof)},
    }


def run_bench(sizes: tuple[int, ...], *, keep: bool = False) -> dict:
    """Run the chain at each size in a scratch folder and return the measurements."""
    results = []
    for users in sizes:
        scratch = Path(tempfile.mkdtemp(prefix=f"dsg17-bench-{users}-"))
        try:
            results.append(_one_size(users, scratch))
        finally:
            if keep:
                log.info("kept scratch folder %s", scratch)
            else:
                shutil.rmtree(scratch, ignore_errors=True)
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "targets": TARGETS,
        "meets_targets": _checks(results),
        "sizes": results,
    }


def _checks(results: list[dict]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for r in results:
        limit = TARGETS["chain_seconds_full"] if r["users"] >= FULL_USERS else TARGETS["chain_seconds_small"]
        if r["users"] >= FULL_USERS or r["users"] <= 2_000:
            out[f"chain_seconds_{r['users']}_users"] = r["chain"]["wall"] <= limit
    full = max(results, key=lambda r: r["train_rows"])
    out["peak_rss_gb"] = full["chain"]["peak_rss_mb"] / 1024 <= TARGETS["peak_rss_gb"]
    out["quick_loop_share"] = full["quick_loop"]["wall"] <= TARGETS["quick_loop_share"] * full["chain"]["wall"]
    out["rerun_seconds"] = all(r["rerun"]["wall"] <= TARGETS["rerun_seconds"] for r in results)
    out["recommend_seconds"] = all(
        r["recommend"]["rc"] == 0 and r["recommend"]["wall"] <= TARGETS["recommend_seconds"] for r in results
    )
    return out


def _sum(stages: list[dict], prefix: str, key: str = "wall") -> float:
    return sum(s[key] for s in stages if s["stage"].split(":")[0] == prefix)


def _recommend_cell(r: dict) -> str:
    """Seconds of the size's ``make recommend`` (a bench.json written before it was measured: "-")."""
    rec = r.get("recommend")
    return "-" if rec is None else f"{rec['wall']:.1f}" + ("" if rec["rc"] == 0 else " (failed)")


def bench_table(bench: dict) -> str:
    """Markdown table: the chain per size, split by stage, with the rerun and the quick loop."""
    lines = [
        "| users | train rows | examples | ingest | features | select | tune | ablation | train | report | submit "
        "| chain wall (s) | CPU (s) | peak RSS (GB) | rerun (s) | recommend (s) | quick loop (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in bench["sizes"]:
        s = r["stages"]
        cells = [_sum(s, k) for k in ("ingest", "features", "select", "tune", "ablation", "train", "report", "submit")]
        cells[1] += _sum(s, "examples")
        lines.append(
            f"| {r['users']:,} | {r['train_rows']:,} | {r.get('n_train_examples') or 0:,} | "
            + " | ".join(f"{c:.0f}" for c in cells)
            + f" | **{r['chain']['wall']:.0f}** | {r['chain']['cpu']:.0f} | {r['chain']['peak_rss_mb'] / 1024:.2f} | "
            f"{r['rerun']['wall']:.1f} | {_recommend_cell(r)} | {r['quick_loop']['wall']:.0f} |"
        )
    ok = ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in bench["meets_targets"].items())
    lines += [
        "",
        f"Stage columns: wall seconds of each stage's own processes (features = examples + every group, train and "
        f"test side, and the recommender's state). Recommend: the whole `make recommend USER=<id> N=10` after the "
        f"chain. Measured {bench['date']} on {bench['machine']['cpus']} cores, Python "
        f"{bench['machine']['python']}. Targets: {ok}.",
    ]
    return "\n".join(lines)


def stage_table(bench: dict) -> str:
    """Markdown table of the full-size run: wall and CPU seconds and peak memory of every stage and model."""
    full = max(bench["sizes"], key=lambda r: r["train_rows"])
    lines = ["| stage | wall (s) | CPU (s) | peak RSS (GB) |", "|---|---:|---:|---:|"]
    for s in full["stages"]:
        lines.append(f"| {s['stage']} | {s['wall']:.1f} | {s['cpu']:.1f} | {s['peak_rss_mb'] / 1024:.2f} |")
    lines += ["", "| model (bake-off) | rows | fit (s) | predict (s) |", "|---|---:|---:|---:|"]
    for m in full["models"]:
        lines.append(f"| {m['model']} | {m['rows']:,} | {m['fit']:.1f} | {m['predict']:.1f} |")
    return "\n".join(lines)


def _update_readme(tables: dict[str, str]) -> None:
    readme = config.ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    for name, table in tables.items():
        text = re.sub(
            rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)",
            lambda m, t=table: m.group(1) + t + "\n" + m.group(2),
            text,
            flags=re.S,
        )
    write_text(text, readme)


def main() -> None:
    ap = argparse.ArgumentParser(description="Time the chain at growing data sizes, split by stage.")
    ap.add_argument(
        "--users",
        type=int,
        nargs="+",
        default=list(DEFAULT_SIZES),
        help="demo sizes in users (default: 2000 6640 19918, ~0.75M, 2.5M, 7.6M rows)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the scratch folders")
    ap.add_argument("--no-readme", action="store_true", help="do not rewrite the README tables")
    args = ap.parse_args()
    bench = run_bench(tuple(args.users), keep=args.keep)
    write_json(bench, config.REPORTS / "bench.json")
    tables = {"bench": bench_table(bench), "bench-stages": stage_table(bench)}
    print(tables["bench"], tables["bench-stages"], sep="\n\n")
    if not args.no_readme:
        _update_readme(tables)


if __name__ == "__main__":
    run_cli(main)

"""The README's commands, run for real through the Makefile on tiny generated data.

Each test works in its own scratch copy of the project's code (sharing ``.venv``), so
the checkout is never touched.  These are the slowest tests (tens of seconds each).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tools.bench import MAKE_JOB_VARS, copy_project

pytestmark = pytest.mark.slow

#: Tiny and deterministic: a trial cap instead of a time budget, so every run does the same work.
FAST_ENV = {
    "DEMO_USERS": "60",
    "OPTUNA_SECONDS": "0",
    "OPTUNA_MAX_TRIALS": "3",
    "CI": "true",
}


def _env() -> dict[str, str]:
    # A user's shell: no pytest or pipeline variables, and no parent make's jobserver (under
    # `make test-all` the inherited MAKEFLAGS would make every child make warn about it).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DSG_")) and k not in MAKE_JOB_VARS}
    env.update(FAST_ENV)
    return env


def make(project: Path, *targets: str, check: bool = True, **extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["make", "--no-print-directory", *targets],
        cwd=project,
        env={**_env(), **extra},
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"make {' '.join(targets)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


def _fresh(tmp_path_factory, name: str) -> Path:
    project = tmp_path_factory.mktemp(name)
    copy_project(project)
    return project


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> tuple[Path, bytes]:
    """A project that has run `make features train submit` once on demo data, and its submission."""
    project = _fresh(tmp_path_factory, "built")
    proc = make(project, "features", "train", "submit")
    assert "demo data" in (proc.stdout + proc.stderr).lower()
    return project, (project / "submissions/latest.csv").read_bytes()


@pytest.fixture
def built(first_run) -> Path:
    return first_run[0]


def _check_submission(project: Path, path: Path) -> pd.DataFrame:
    sub = pd.read_csv(path)
    test = pd.read_csv(project / "data/raw/test.csv")
    assert list(sub.columns) == ["sample_id", "is_listened"]
    assert sub["sample_id"].tolist() == test["sample_id"].tolist()
    p = sub["is_listened"].to_numpy()
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    assert p.std() > 0  # a real model, not a constant
    return sub


def test_readme_chain_writes_a_valid_submission_and_report(built):
    subs = sorted((built / "submissions").glob("submission_*.csv"))
    assert len(subs) == 1
    _check_submission(built, subs[0])
    assert (built / "submissions/latest.csv").read_bytes() == subs[0].read_bytes()
    html = (built / "reports/model_ranking.html").read_text()
    assert "demo data" in html.lower()
    metrics = pd.read_json(built / "reports/metrics.json", typ="series")
    assert 0.5 < metrics["validation_auc"] <= 1.0
    # make train does not run the ablation (a diagnostic on request): the report says how to get it
    assert not (built / "reports/ablation.json").exists()
    assert "ablation.json) not available: run make ablation." in html


def test_evaluate_prints_validation_test_and_oracle_auc_and_brings_the_ablation_into_the_report(built):
    report = built / "reports/model_ranking.html"
    out = make(built, "evaluate").stdout
    assert "Validation AUC" in out
    assert "test AUC" in out and "oracle AUC" in out
    assert "ablation" in out.lower()
    assert "AUC with every group" in report.read_text()  # the ablation re-rendered the report


def _state(project: Path) -> dict[str, int]:
    """Every file's modification time, outside .venv (a symlink here)."""
    return {
        str(p.relative_to(project)): p.stat().st_mtime_ns
        for p in project.rglob("*")
        if p.is_file() and ".venv" not in p.parts and "__pycache__" not in p.parts
    }


def test_nothing_reruns_when_nothing_changed(built):
    out = make(built, "-n", "features").stdout
    assert "pipeline." not in out, out
    before = _state(built)
    out = make(built, "-n", "features", "train", "submit").stdout
    assert "python" not in out, out  # no stage would run, and no stamp would be written
    out = make(built, "features", "train", "submit").stdout
    assert "python" not in out, out  # a second run does no work beyond checking
    assert _state(built) == before


def test_dry_run_writes_nothing_even_when_settings_changed(built):
    before = _state(built)
    out = make(built, "-n", "features", "train", "submit", ROUNDS="2", SEED="3").stdout
    assert "--write-stamp" in out and "pipeline.data.examples --split train" in out
    assert _state(built) == before  # make -n tells what would run and writes nothing


def test_drop_groups_plans_no_build_of_the_dropped_group(built, tmp_path_factory):
    fresh = _fresh(tmp_path_factory, "dropped")
    assert "--group fm" in make(fresh, "-n", "features").stdout
    out = make(fresh, "-n", "features", DROP_GROUPS="fm").stdout
    # not even for the recommender's state, which comes after fm's build when fm is built
    assert "--group time" in out and "pipeline.recommend_state" in out and "--group fm" not in out, out
    before = _state(built)
    out = make(built, "-n", "features", "train", DROP_GROUPS="fm").stdout
    # the state at now is rebuilt for the new group list, and the models retrained, without fm
    assert "pipeline.recommend_state" in out and "pipeline.train" in out, out
    assert "--group fm" not in out, out
    assert "--group" not in out, out  # the other groups' files stand as they are
    assert _state(built) == before
    bad = make(built, "-n", "features", check=False, DROP_GROUPS="fm,nosuch")
    assert bad.returncode == 2 and "DROP_GROUPS=fm,nosuch: unknown feature group(s) nosuch" in bad.stderr


def test_a_model_subset_fits_only_those_models_and_says_so(built):
    make(built, "train", "submit", MODELS="logistic_regression,lightgbm")
    metrics = pd.read_json(built / "reports/metrics.json", typ="series")
    assert metrics["models_covered"] == ["logistic_regression", "lightgbm"]
    assert {r["model"] for r in metrics["ranking"]} == {"logistic_regression", "lightgbm"}
    assert "logistic_regression, lightgbm" in (built / "reports/model_ranking.html").read_text()
    _check_submission(built, built / "submissions/latest.csv")
    make(built, "train", "submit")  # back to the whole bake-off: the unchanged fits are read back
    metrics = pd.read_json(built / "reports/metrics.json", typ="series")
    # ...all of it but the tuned LightGBM: this project never ran `make tune`, and the report says so.
    assert set(metrics["models_covered"]) == set(metrics["models_all"]) - {"lightgbm_tuned"}
    assert "make tune" in metrics["models_skipped"]["lightgbm_tuned"]
    html = (built / "reports/model_ranking.html").read_text()
    assert 'id="models-skipped-lightgbm_tuned"' in html and "This run covered" not in html


def test_one_feature_group_change_rebuilds_only_that_group(built):
    user_py = built / "features/user.py"
    before = user_py.stat()
    user_py.touch()
    out = make(built, "-n", "features").stdout
    os.utime(user_py, ns=(before.st_atime_ns, before.st_mtime_ns))  # leave the project up to date
    assert "--group user --split train" in out and "--group user --split test" in out
    assert "--group item" not in out and "pipeline.data.ingest" not in out and "pipeline.data.examples" not in out


def test_model_settings_change_reruns_neither_parsing_nor_features(built):
    out = make(built, "-n", "submit", "ROWS_SVM=500", ROWS_SVM="500").stdout
    assert "pipeline.train" in out
    assert (
        "pipeline.data.ingest" not in out
        and "pipeline.build_features" not in out
        and "pipeline.data.examples" not in out
    )
    # Tuning settings are read by `make tune` alone: changing one reruns nothing of the chain.
    out = make(built, "-n", "features", "train", "submit", "OPTUNA_MAX_TRIALS=4", OPTUNA_MAX_TRIALS="4").stdout
    assert "pipeline.tune" not in out and "pipeline.train" not in out and "python" not in out, out


def test_feature_setting_change_rebuilds_examples_and_train_features(built):
    out = make(built, "-n", "features", ROUNDS="2").stdout
    assert "pipeline.data.examples --split train" in out
    assert "pipeline.data.ingest" not in out


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("SEED", "abc", "SEED='abc' is not an integer"),
        ("ROUNDS", "abc", "ROUNDS='abc' is not an integer"),
        ("SESSION_GAP_MINUTES", "-1", "SESSION_GAP_MINUTES='-1' must be >= 0.01"),
        ("OPTUNA_MAX_TRIALS", "many", "OPTUNA_MAX_TRIALS='many' is not an integer"),
    ],
)
def test_a_malformed_setting_stops_make_with_a_plain_message(built, setting, value, says):
    before = _state(built)
    proc = make(built, "features", "train", check=False, **{setting: value})
    assert proc.returncode == 2
    assert says in proc.stderr and "Traceback" not in proc.stdout + proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1  # one line
    assert _state(built) == before  # nothing was written


def test_submit_with_another_model(built):
    pattern = "submission_logistic_regression_*.csv"
    before = set((built / "submissions").glob(pattern))  # the winner's own, if logistic regression won
    make(built, "submit", MODEL="logistic_regression")
    subs = sorted(set((built / "submissions").glob(pattern)) - before)
    assert len(subs) == 1
    _check_submission(built, subs[0])


def test_bad_input_stops_cleanly_without_a_submission(tmp_path_factory):
    project = _fresh(tmp_path_factory, "bad")
    raw = project / "data/raw"
    raw.mkdir(parents=True, exist_ok=True)
    make(project, "data/raw/train.csv")  # demo pair
    lines = (raw / "train.csv").read_text().splitlines()
    cols = lines[3].split(",")
    cols[1] = "abc"  # ts_listen on data line 3
    lines[3] = ",".join(cols)
    (raw / "train.csv").write_text("\n".join(lines) + "\n")
    before = (raw / "train.csv").read_bytes()
    proc = make(project, "features", "train", "submit", check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "train.csv" in proc.stderr and "ts_listen" in proc.stderr
    assert not list((project / "submissions").glob("*.csv"))
    assert not (project / "data/interim/train.parquet").exists()
    assert (raw / "train.csv").read_bytes() == before  # the user's file is never changed


def test_own_data_dropped_into_raw_is_picked_up(built, tmp_path):
    project = built
    py = str(project / ".venv/bin/python")
    other = tmp_path / "other"
    subprocess.run(
        [
            py,
            "-m",
            "pipeline.data.demo",
            "--users",
            "50",
            "--seed",
            "7",
            "--out-dir",
            str(other),
            "--answers",
            str(tmp_path / "answers.csv"),
        ],
        cwd=project,
        check=True,
        capture_output=True,
    )
    # A replaced test.csv alone: only the test side is rebuilt.
    time.sleep(1.1)
    os.replace(other / "test.csv", project / "data/raw/test.csv")
    dry = make(project, "-n", "submit").stdout
    assert "pipeline.data.ingest --split test" in dry and "--group user --split test" in dry
    assert "--split train" not in dry and "pipeline.train" not in dry, dry
    make(project, "submit")
    _check_submission(project, project / "submissions/latest.csv")
    # A whole new pair: everything that depends on it is rebuilt.
    os.replace(other / "train.csv", project / "data/raw/train.csv")
    (project / "data/raw/.demo").unlink(missing_ok=True)
    make(project, "features", "train", "submit")
    _check_submission(project, project / "submissions/latest.csv")


def _run_with_kills(project: Path, kill_after: list[float]) -> None:
    """Start the chain, SIGTERM the whole make process group after each delay, then finish it."""
    for delay in kill_after:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "features", "train", "submit"],
            cwd=project,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=120)
    make(project, "features", "train", "submit")


def test_killed_runs_resume_to_the_same_bytes_as_an_uninterrupted_run_in_another_clone(first_run, tmp_path_factory):
    project = _fresh(tmp_path_factory, "killed")
    _run_with_kills(project, [4.0, 9.0, 17.0])
    assert not list(project.rglob(".tmp-*")), "temporary files left behind"
    assert (project / "submissions/latest.csv").read_bytes() == first_run[1], (
        "same data and seed must give a byte-identical submission, interrupted or not"
    )


def test_recommend_prints_n_distinct_known_tracks_best_first_and_refuses_bad_ids(built):
    train = pd.read_parquet(built / "data/interim/train.parquet")
    user = int(train["user_id"].value_counts().sort_index().idxmax())
    proc = make(built, "recommend", f"USER={user}", "N=5")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()[:3].strip().rstrip(".").isdigit()]
    assert len(lines) == 5, proc.stdout
    tracks = [int(ln.split("track")[1].split()[0]) for ln in lines]
    probs = [float(ln.split("p=")[1].split()[0]) for ln in lines]
    assert len(set(tracks)) == 5 and set(tracks) <= set(train["media_id"].tolist())
    assert probs == sorted(probs, reverse=True)
    heard = set(train.loc[train["user_id"] == user, "media_id"].tolist())
    assert not set(tracks) & heard  # INCLUDE_HEARD is off
    assert "why:" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
    several = make(built, "recommend", f"USER={user},{user + 1}", "N=3")
    assert several.stdout.count("Top 3 for user") == 2
    cold = make(built, "recommend", "USER=987654321", "N=3", "AGE=24", "GENDER=1")
    assert "has no play in the train history" in cold.stdout and "Top 3 for user 987654321" in cold.stdout
    for args, needle in (
        (("recommend", "USER=abc"), "USER='abc' is not an integer id"),
        (("recommend", f"USER={user}", "N=0"), "N must be between 1 and 500"),
        (("similar", "MEDIA=123456789"), "123456789"),
    ):
        bad = make(built, *args, check=False)
        assert bad.returncode == 2, bad.stdout + bad.stderr
        assert needle in bad.stdout + bad.stderr and "Traceback" not in bad.stdout + bad.stderr
    media = int(train["media_id"].value_counts().sort_index().idxmax())
    near = make(built, "similar", f"MEDIA={media}", "N=4")
    assert f"closest to track {media}" in near.stdout


def _python_json(project: Path, code: str) -> object:
    """Run ``code`` with the project's Python in the project; the JSON its last output line holds."""
    proc = subprocess.run(
        [str(project / ".venv/bin/python"), "-c", code], cwd=project, env=_env(), capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_recommend_reads_the_state_at_now_and_lists_what_a_full_pass_lists(built):
    """make features writes the recommender's state; a request scored from it (features.now) gives the
    tracks, probabilities and reasons that a pass of the groups over the whole history gives."""
    train = pd.read_parquet(built / "data/interim/train.parquet")
    user = int(train["user_id"].value_counts().sort_index().idxmax())
    proc = make(built, "recommend", f"USER={user}", "N=3")
    assert "model and state at now loaded" in proc.stdout, proc.stdout + proc.stderr
    assert "pass over the whole history" not in proc.stdout + proc.stderr
    head = subprocess.run(
        f"make --no-print-directory recommend USER={user} N=500 | head -2", shell=True, cwd=built, env=_env(),
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert head.returncode == 0 and "Traceback" not in head.stderr and "Error" not in head.stderr, head.stderr
    assert len(head.stdout.splitlines()) == 2
    code = (
        "import json\n"
        "from pipeline.recommend import Recommender\n"
        "out = {}\n"
        "for full in (False, True):\n"
        "    rec = Recommender(full_pass=full)\n"
        "    assert (rec.state is None) == full\n"
        f"    got = rec.recommend_many([{user}, 987654321], n=15, age=31, gender=1)\n"
        "    out[str(full)] = [r.tracks.to_dict(orient='list') for r in got]\n"
        "print(json.dumps(out, default=str))\n"
    )
    both = _python_json(built, code)
    assert both["False"] == both["True"]
    assert len(both["False"][0]["media_id"]) == 15 and len(both["False"][1]["media_id"]) == 15


def _readme_python() -> str:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Use it from Python") :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("\n```", start)]


def test_sample_recommendations_from_the_feature_stage_equal_a_recompute(built):
    """The report's three users are scored from features the test pass computed (features/now/):
    the same tracks and probabilities as computing their features afresh."""
    assert sorted(p.name for p in (built / "data/processed/features/now").iterdir()) == sorted(
        p.name for p in (built / "data/processed/features/test").iterdir()
    )
    code = (
        "import json; from pathlib import Path; from pipeline.recommend import sample_recommendations; "
        "print(json.dumps(sample_recommendations(features_dir=Path('no-such-dir'))['users'], default=str))"
    )
    fresh = _python_json(built, code)
    saved = json.loads((built / "reports/recommendations.json").read_text())["users"]
    assert sorted(fresh) == sorted(saved) == ["heavy", "light", "median"]  # (the JSON's keys are sorted)
    for label in saved:
        assert fresh[label]["user_id"] == saved[label]["user_id"]
        got = [(t["media_id"], round(t["p_listen"], 9), t["why"]) for t in saved[label]["top"]]
        assert got == [(t["media_id"], round(t["p_listen"], 9), t["why"]) for t in fresh[label]["top"]]
        assert len(got) == 10


def test_the_readme_python_example_runs_as_written(built):
    code = _readme_python()
    before = set((built / "submissions").iterdir())
    proc = subprocess.run(
        [str(built / ".venv/bin/python"), "-c", code], cwd=built, env=_env(), capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "'auc':" in proc.stdout  # the score it prints
    new = set((built / "submissions").iterdir()) - before
    assert len(new) == 1 and next(iter(new)).name.startswith("submission_my_lightgbm_")
    _check_submission(built, next(iter(new)))
    latest = pd.read_csv(built / "submissions/latest.csv")
    assert latest.equals(pd.read_csv(next(iter(new))))  # latest.csv is the example's now

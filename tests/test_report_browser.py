"""The HTML report renders in a real browser: every embedded plot decodes and shows.

The report carries a small inline script that, on the page's load event, writes into
``<span id="img-check">`` how many images decoded (``naturalWidth > 0``) out of how
many there are; headless Chromium's ``--dump-dom`` prints the DOM after that event.
A screenshot is taken too, as a second check that the page paints at all.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline import report

pytestmark = pytest.mark.browser

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)


def _fake_artifacts():
    # Reuse the fake artifact set of test_report.py without depending on how pytest put tests/ on sys.path.
    spec = importlib.util.spec_from_file_location("_report_fakes", Path(__file__).with_name("test_report.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_fake_artifacts


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium / chromium-browser on PATH (apt-get install chromium)")
def test_every_image_of_the_report_loads_in_chromium(tmp_path):
    roots = _fake_artifacts()(tmp_path / "artifacts", demo=True, n_rows=2000)
    out = report.build_report(out=tmp_path / "model_ranking.html", seed=0, **roots)
    n_img = out.read_text(encoding="utf-8").count('<img src="data:image/png;base64,')
    assert n_img >= 6

    dom = _chromium(tmp_path, "--dump-dom", out.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    match = re.search(r'<span id="img-check"[^>]*data-loaded="(\d+)"[^>]*data-total="(\d+)"', dom.stdout)
    assert match, "the image check script did not run (no data-loaded attribute in the dumped DOM)"
    loaded, total = map(int, match.groups())
    assert total == n_img
    assert loaded == total, f"only {loaded} of {total} images decoded"
    assert 'id="demo-banner"' in dom.stdout

    shot = tmp_path / "report.png"
    run = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,3000", out.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 50_000  # a blank page compresses to a few kilobytes

"""Environment overrides: typed, bounded, and collected instead of raised at import."""

from __future__ import annotations

import pytest

from core.errors import PipelineError
from core.settings import EnvSettings


def test_values_defaults_and_no_cap(monkeypatch) -> None:
    monkeypatch.setenv("A_INT", "1_000")
    monkeypatch.setenv("A_NONE", "none")
    monkeypatch.setenv("A_FLOAT", "2.5")
    monkeypatch.setenv("A_CHOICE", "b")
    monkeypatch.setenv("A_EMPTY", " ")
    env = EnvSettings("test")
    assert env.int("A_INT", 5) == 1000
    assert env.int("A_NONE", 5, allow_none=True) is None
    assert env.int("A_EMPTY", 5) == 5 and env.int("A_UNSET", 7) == 7
    assert env.float("A_FLOAT", 1.0, low=0.0) == 2.5
    assert env.choice("A_CHOICE", "a", ("a", "b")) == "b"
    env.validate()  # nothing to report


def test_malformed_values_keep_the_default_and_are_reported_together(monkeypatch) -> None:
    for name, value in {"B1": "abc", "B2": "0", "B3": "none", "B4": "-1", "B5": "9", "B6": "z"}.items():
        monkeypatch.setenv(name, value)
    env = EnvSettings("test")
    assert env.int("B1", 5) == 5
    assert env.int("B2", 5, minimum=1) == 5
    assert env.int("B3", 5) == 5
    assert env.float("B4", 1.0, low=0.01) == 1.0
    assert env.float("B5", 1.0, low=0.0, high=2.0) == 1.0
    assert env.choice("B6", "a", ("a", "b")) == "a"
    with pytest.raises(PipelineError) as err:
        env.validate()
    assert str(err.value) == (
        "bad test setting(s) in the environment: B1='abc' is not an integer; B2='0' must be >= 1; "
        "B3='none' must be an integer; B4='-1' must be >= 0.01; B5='9' must be between 0 and 2; "
        "B6='z' must be one of a, b"
    )

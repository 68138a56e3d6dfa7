"""User directories: computed without platformdirs on Linux, with exactly platformdirs' answers."""

from __future__ import annotations

import sys
from pathlib import Path

import platformdirs
import pytest

from qlikm2m import paths

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="the XDG rule is Linux's")


@pytest.fixture
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (paths.CONFIG_DIR_ENV, paths.CACHE_DIR_ENV, "ANDROID_DATA"):
        monkeypatch.delenv(name, raising=False)


@linux_only
@pytest.mark.parametrize(
    "xdg",
    [None, "", "   ", "/srv/xdg", "relative/xdg", "~/xdg-tilde", "/trailing/slash/"],
    ids=["unset", "empty", "blank", "absolute", "relative", "tilde", "trailing-slash"],
)
@pytest.mark.parametrize(
    "home", ["/home/someone", "/home/someone/", "/"], ids=["home", "home-slash", "root"]
)
@pytest.mark.parametrize(
    ("variable", "ours", "theirs"),
    [
        ("XDG_CONFIG_HOME", paths.config_dir, platformdirs.user_config_dir),
        ("XDG_CACHE_HOME", paths.cache_dir, platformdirs.user_cache_dir),
    ],
    ids=["config", "cache"],
)
def test_linux_directories_are_platformdirs_own(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    no_overrides: None,
    xdg: str | None,
    home: str,
    variable: str,
    ours: object,
    theirs: object,
) -> None:
    monkeypatch.setenv("HOME", home)
    if xdg is None:
        monkeypatch.delenv(variable, raising=False)
    else:
        monkeypatch.setenv(variable, xdg)
    assert callable(ours)
    assert callable(theirs)
    expected = Path(theirs(paths.APP_NAME, appauthor=False))
    assert ours({}) == expected


@linux_only
def test_without_overrides_platformdirs_is_not_imported(no_overrides: None) -> None:
    import subprocess

    code = (
        "import sys\n"
        "from qlikm2m import paths\n"
        "paths.config_dir(); paths.cache_dir()\n"
        "print('platformdirs' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"


def test_overrides_win(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {paths.CONFIG_DIR_ENV: str(tmp_path / "c"), paths.CACHE_DIR_ENV: str(tmp_path / "k")}
    assert paths.config_dir(env) == tmp_path / "c"
    assert paths.cache_dir(env) == tmp_path / "k"

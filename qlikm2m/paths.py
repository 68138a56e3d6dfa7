"""Where qlikm2m keeps its files: computed on each call, never created on read.

``QLIKM2M_CONFIG_DIR`` and ``QLIKM2M_CACHE_DIR`` override the platform's user directories (tests
and CI jobs point them at temporary folders). On Linux the user directories are the XDG ones,
computed here exactly as platformdirs computes them (importing it cost ~3 ms of every command);
elsewhere (macOS, Windows, Android) platformdirs answers.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

CONFIG_DIR_ENV = "QLIKM2M_CONFIG_DIR"
CACHE_DIR_ENV = "QLIKM2M_CACHE_DIR"
APP_NAME = "qlikm2m"


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """The folder of the contexts file (and of opt-in secret files)."""
    env = os.environ if env is None else env
    override = env.get(CONFIG_DIR_ENV)
    if override:
        return Path(override).expanduser()
    xdg = _xdg_dir("XDG_CONFIG_HOME", ".config")
    if xdg is not None:
        return xdg
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The folder of the token cache."""
    env = os.environ if env is None else env
    override = env.get(CACHE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    xdg = _xdg_dir("XDG_CACHE_HOME", ".cache")
    if xdg is not None:
        return xdg
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def _xdg_dir(variable: str, default: str) -> Path | None:
    """platformdirs' answer on Linux, in the cases where every version of it agrees.

    ``$variable`` when it is an absolute path, else ``$HOME/default`` when ``HOME`` is absolute;
    plus the app name. None otherwise (not Linux, Android, a relative or blank-but-set variable,
    no usable ``HOME``): platformdirs then decides, as before. Read from the process environment,
    as platformdirs does.
    """
    if sys.platform != "linux" or "ANDROID_DATA" in os.environ:
        return None
    base = os.environ.get(variable, "")
    if not base:
        home = os.environ.get("HOME", "")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home.rstrip("/") or "/", default)
    elif not os.path.isabs(base):
        return None
    return Path(os.path.join(base, APP_NAME))


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) as 0700 and tighten it if it already exists with looser bits."""
    # mkdir(parents=True) would give the missing parents the umask's mode (0755): the cache dir
    # above tokens/ is one of them, and `doctor` rightly flags it. Each one we create is 0700.
    missing = []
    folder = path
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)
    return path

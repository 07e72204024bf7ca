"""The local stack's files that outlive a restart: the project's git-ignored `.local/` folder.

The one module that knows where that folder is; LOCAL_STATE_DIR moves it (tests use a temporary one).
"""
import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
STATE_DIR_VARIABLE = "LOCAL_STATE_DIR"


def state_dir() -> Path:
    """The folder (created by write_private_state when first needed)."""
    return Path(os.environ.get(STATE_DIR_VARIABLE) or PROJECT_DIR / ".local")


def state_path(name: str) -> Path:
    """Where the state file `name` lives."""
    return state_dir() / name


def shown(path: Path) -> str:
    """The path as a user reads it: relative to the project when inside it."""
    try:
        return str(path.relative_to(PROJECT_DIR))
    except ValueError:
        return str(path)


def read_state(name: str) -> str | None:
    """The text of a state file, or None when there is none yet."""
    try:
        return state_path(name).read_text()
    except FileNotFoundError:
        return None


def write_private_state(name: str, text: str) -> Path:
    """Write a state file only this user may read, replacing the old one in one step."""
    folder = state_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    scratch = folder / f".{name}.{os.getpid()}.tmp"
    # Opened 0600 before anything is written: the secrets in it are never readable by others.
    with os.fdopen(os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(text)
    os.replace(scratch, folder / name)
    return folder / name

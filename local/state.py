"""The local stack's state between runs: the git-ignored `.local/` folder of the project.

The one place that knows where it is. `make run` keeps what should outlive a restart there
(the demo webhook secret) and what other commands need to find the running stack (the dev
issuer's address and signing key). LOCAL_STATE_DIR moves it (tests use a temporary folder).
"""
import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
STATE_DIR_VARIABLE = "LOCAL_STATE_DIR"


def state_dir() -> Path:
    """The folder itself (not created here)."""
    return Path(os.environ.get(STATE_DIR_VARIABLE) or PROJECT_DIR / ".local")


def state_path(name: str) -> Path:
    """Where the state file `name` lives."""
    return state_dir() / name


def shown(path: Path) -> str:
    """The path as a user should read it: relative to the project when it is inside."""
    try:
        return str(path.relative_to(PROJECT_DIR))
    except ValueError:
        return str(path)


def read_state(name: str) -> str | None:
    """The text of a state file, or None when there is none."""
    try:
        return state_path(name).read_text()
    except FileNotFoundError:
        return None


def _private_scratch(folder: Path, name: str, text: str) -> Path:
    # Created 0600 before anything is written: no other user ever sees the secret in it.
    scratch = folder / f".{name}.{os.getpid()}.tmp"
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    return scratch


def write_private_state(name: str, text: str) -> Path:
    """Write a state file readable by this user only, replacing any earlier one at once."""
    folder = state_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / name
    # Renamed over the old file: no reader ever sees a half-written one.
    os.replace(_private_scratch(folder, name, text), path)
    return path


def create_private_state_once(name: str, make_text) -> tuple[str, bool]:
    """The text of a state file, created with make_text() if absent; (text, created)."""
    existing = read_state(name)
    if existing is not None:
        return existing, False
    folder = state_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    scratch = _private_scratch(folder, name, make_text())
    try:
        # A hard link fails if the name exists: of two stacks starting at once, one creates
        # the file (complete, never half-written) and both use its text.
        os.link(scratch, folder / name)
        created = True
    except FileExistsError:
        created = False
    finally:
        scratch.unlink()
    return state_path(name).read_text(), created


def remove_state(name: str) -> None:
    """Delete a state file if it is there."""
    state_path(name).unlink(missing_ok=True)

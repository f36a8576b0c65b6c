"""Where a browser test's screenshot and console log are written.

One directory for the whole run (``test-output/browser`` under the repository unless
``--browser-output`` names another), one file name per test, so a CI user finds a failing test's
files by its name.
"""

import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = REPO / "test-output" / "browser"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def output_directory(option: str | None) -> pathlib.Path:
    """Return the run's output directory (created), from the ``--browser-output`` option or the default."""
    directory = pathlib.Path(option).resolve() if option else DEFAULT_OUTPUT
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def artifact_path(directory: pathlib.Path, test_name: str, suffix: str) -> pathlib.Path:
    """Return the file for this test and suffix (``.png``, ``.console.log``), its name made file-safe."""
    return directory / (_UNSAFE.sub("_", test_name).strip("_") + suffix)

"""The console's files: every one is shipped in the package and served with a known type."""

import fnmatch
import pathlib
import tomllib

from gateway.resources.console import CONSOLE_DIR
from gateway.resources.console import CONTENT_TYPES
from gateway.resources.console import load_console_files

PYPROJECT = pathlib.Path(__file__).resolve().parents[3] / "pyproject.toml"


def console_files() -> list[pathlib.Path]:
    return [path for path in CONSOLE_DIR.rglob("*") if path.is_file()]


def test_every_console_file_is_package_data() -> None:
    package_data = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]["gateway"]
    for path in console_files():
        name = path.relative_to(CONSOLE_DIR.parent).as_posix()
        # setuptools globs do not cross directories: a pattern covers files at its own depth only.
        covering = [p for p in package_data if fnmatch.fnmatch(name, p) and name.count("/") == p.count("/")]
        assert covering, name


def test_every_console_file_has_a_served_type() -> None:
    served = load_console_files()
    for path in console_files():
        assert path.suffix in CONTENT_TYPES, path
        assert path.relative_to(CONSOLE_DIR).as_posix() in served


def test_no_file_builds_html_from_text_or_sets_an_inline_style() -> None:
    # The CSP forbids inline style; untrusted text must never be parsed as HTML.
    forbidden = (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        ".style.",
        "eval(",
        "new Function",
    )
    for path in console_files():
        text = path.read_text()
        for word in forbidden:
            assert word not in text, (path.name, word)
        if path.suffix == ".html":
            assert "style=" not in text and "<style" not in text, path.name
            assert "<script>" not in text and " on" + "click=" not in text, path.name

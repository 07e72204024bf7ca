"""The generated sections of the docs pages: figures written by the tool that measures them.

A page holds a section between two marker lines, which only its tool rewrites:

    <!-- generated: bench (by `make bench`, bench/run_all.py); do not edit by hand -->
    ...
    <!-- end generated: bench -->

so each figure lives in one place and the README and other pages link to it.
"""
import re
from pathlib import Path


class SectionMissing(ValueError):
    """The page has no generated section of that name (its markers were removed or renamed)."""


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- generated: {re.escape(name)} [^\n]*-->\n)(.*?)(<!-- end generated: {re.escape(name)} -->)",
                      re.S)


def read_section(page: Path, name: str) -> str:
    """The text of a page's generated section."""
    match = _pattern(name).search(page.read_text())
    if match is None:
        raise SectionMissing(f"{page} has no section between '<!-- generated: {name} ...-->' and "
                             f"'<!-- end generated: {name} -->'; put both marker lines back.")
    return match.group(2)


def write_section(page: Path, name: str, text: str) -> None:
    """Replace the text of a page's generated section, leaving the rest of the page as it is."""
    read_section(page, name)
    body = text if text.endswith("\n") else text + "\n"
    page.write_text(_pattern(name).sub(lambda match: match.group(1) + body + match.group(3), page.read_text(), count=1))

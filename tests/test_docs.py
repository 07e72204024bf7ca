"""What the docs claim that a test can check: the README stays the front door, links between the pages
resolve, measured figures come from the pages `make bench` / `make parity` write, and the rules the
pages state are the ones the code applies."""
import re
import subprocess
from pathlib import Path

import pytest

from local.engine import EXPRESS_SUFFIX
from tools.doc_sections import read_section

PROJECT_DIR = Path(__file__).resolve().parent.parent
README = PROJECT_DIR / "README.md"
DOCS = PROJECT_DIR / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
MAX_README_LINES = 250
# The pages that hold measured figures, each written by the tool that measures them.
GENERATED = {DOCS / "benchmarks.md": "bench", DOCS / "parity.md": "parity"}


def _prose(page: Path) -> str:
    """The page without its fenced code blocks (a link or figure in an example is not a claim)."""
    return re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)


def _links(page: Path) -> list:
    text = re.sub(r"`[^`\n]*`", "", _prose(page))
    return [target for target in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", target)]


def _anchors(page: Path) -> set:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", _prose(page), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_the_readme_is_a_front_door_of_at_most_250_lines():
    text = README.read_text()
    assert len(text.splitlines()) <= MAX_README_LINES
    # What it is, the two commands, a first call (curl and CLI), the API table, where to go next.
    for must in ("## Set-up: two commands", "make run", "make test", "### A first call", "curl -s",
                 ".venv/bin/sfn-gateway start", "| Route | Step Functions operation | Success |",
                 "## Where to go next"):
        assert must in text, must
    linked = {target.split("#")[0] for target in _links(README)}
    assert {f"docs/{page.name}" for page in DOCS.glob("*.md")} <= linked


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_link_to_another_page_resolves_and_its_anchor_exists(page):
    for target in _links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target} does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{page.name}: {target}: no heading {anchor!r} in {linked.name}"


# A deployment.zip size, a percentile or median in ms, a rate: what benchmarks measure.
MEASURED = re.compile(r"zip\b[^.\n]{0,80}\b\d+(\.\d+)? KiB|\b(p50|p90|p99|median)\b[^.\n|]{0,12}\d+(\.\d+)? ?m?s\b"
                      r"|\d+ req/s")


@pytest.mark.parametrize("page", [page for page in PAGES if page not in GENERATED], ids=lambda page: page.name)
def test_measured_figures_are_not_repeated_outside_the_generated_pages(page):
    found = [match.group(0) for match in MEASURED.finditer(page.read_text())]
    assert found == [], f"{page.name} repeats measured figures {found}: link docs/benchmarks.md instead"


def test_the_pattern_for_measured_figures_finds_the_figures_the_docs_used_to_repeat():
    for old in ("`deployment.zip` stays 55.7 KiB in every mode", "p50 4 ms, p90 8 ms over 30 runs",
                "the result arrives a median 160 ms after", "(55 req/s, p50 278 ms"):
        assert MEASURED.search(old), old


@pytest.mark.parametrize("page, section", GENERATED.items(), ids=lambda value: getattr(value, "name", value))
def test_each_generated_page_holds_its_section_written_by_its_tool(page, section):
    text = read_section(page, section)
    assert text.strip() and "do not edit by hand" in page.read_text()


def test_the_benchmark_page_holds_the_figures_the_other_pages_link_to():
    table = read_section(DOCS / "benchmarks.md", "bench")
    for figure in ("P3 deployment.zip:", "P6 ", "P7 webhook"):
        assert figure in table, figure


def test_the_docs_state_the_file_name_rule_the_local_engine_applies():
    page = (DOCS / "local-stack.md").read_text()
    assert f"`<name>{EXPRESS_SUFFIX}.asl.json` becomes an EXPRESS state" in " ".join(page.split())
    assert "`EXPRESS_SUFFIX` in `local/engine/local_engine.py`" in page
    assert f"`{EXPRESS_SUFFIX}` name" in README.read_text()


def test_the_415_rule_says_beside_it_that_a_post_without_content_type_is_read_as_json():
    rules = " ".join((DOCS / "api.md").read_text().split())
    [rule] = [item for item in rules.split("- ") if "415 `UnsupportedMediaType`" in item]
    assert "A POST with no `Content-Type` at all is read as JSON" in rule


def test_the_documented_path_line_puts_the_venvs_sfn_gateway_on_path(tmp_path):
    # Given a project folder whose .venv/bin holds the command, as `make client` leaves it
    command = tmp_path / ".venv" / "bin" / "sfn-gateway"
    command.parent.mkdir(parents=True)
    command.write_text("#!/bin/sh\necho sfn-gateway from the venv\n")
    command.chmod(0o755)
    [line] = [line for line in (DOCS / "client.md").read_text().splitlines() if line.startswith("export PATH=")]
    # When the documented line runs there, then `sfn-gateway` alone is that command
    ran = subprocess.run(["bash", "-c", f"{line.split('#')[0]}\nsfn-gateway"], cwd=tmp_path, capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin"})
    assert (ran.returncode, ran.stdout) == (0, "sfn-gateway from the venv\n"), ran.stderr

"""The generated sections of the docs: `make bench` and `make parity` rewrite their own section and nothing else."""
import importlib

import pytest

from bench import run_all
from tools import parity
from tools.doc_sections import SectionMissing, read_section, write_section

PAGE = """# Benchmarks

Hand-written text stays.

<!-- generated: bench (by `make bench`, bench/run_all.py); do not edit by hand -->
old table
<!-- end generated: bench -->

More hand-written text.
"""


def test_write_section_replaces_only_the_text_between_the_markers(tmp_path):
    page = tmp_path / "benchmarks.md"
    page.write_text(PAGE)
    write_section(page, "bench", "new table\nsecond line")
    assert page.read_text() == PAGE.replace("old table\n", "new table\nsecond line\n")
    assert read_section(page, "bench") == "new table\nsecond line\n"


def test_a_page_without_the_markers_is_refused_naming_them_and_left_alone(tmp_path):
    page = tmp_path / "parity.md"
    page.write_text("# Parity\n")
    with pytest.raises(SectionMissing, match="<!-- end generated: parity -->"):
        write_section(page, "parity", "table")
    assert page.read_text() == "# Parity\n"


def test_the_bench_table_is_read_back_as_written_and_a_partial_run_replaces_only_its_rows():
    first = [("package", "P3 deployment.zip: 65.2 KiB", 0, 3.0, "2026-12-04 17:00"),
             ("webhook_delay", "Traceback: boom | x", 1, 2.0, "2026-12-04 17:00"),
             ("load", "Load: 5000/5000 x 201", 0, 99.0, "2026-12-04 17:00"), ("", "second line", None, None, None)]
    assert run_all.rows_of(run_all.markdown(first, "2 vCPU")) == first
    again = [("webhook_delay", "P7 webhook delivery delay: p50 3 ms", 0, 40.0, "2026-12-04 18:00")]
    assert run_all.merged(first, again) == [first[0], again[0], first[2], first[3]]


def test_a_bench_table_from_before_the_run_dates_takes_its_latest_run_date():
    older = ("Latest run: 2026-12-04 17:12 UTC, 2 vCPU.\n\n| benchmark | result | exit | took |\n|---|---|---|---|\n"
             "| package | P3 deployment.zip: 65.2 KiB | 0 | 3 s |\n|  | detail |  |  |\n")
    assert run_all.rows_of(older) == [("package", "P3 deployment.zip: 65.2 KiB", 0, 3.0, "2026-12-04 17:12"),
                                      ("", "detail", None, None, None)]


@pytest.mark.parametrize("name", run_all.bench_modules())
def test_every_benchmark_module_imports(name):
    # A benchmark that no longer imports (a moved test helper) would only show up in `make bench`.
    assert importlib.import_module(f"bench.{name}")


def test_the_parity_report_counts_the_calls_and_lists_the_differences_and_their_reasons():
    rows = parity.summarize([{"step": "history", "field": "status", "ours": 400, "theirs": 200}], parity.KNOWN)
    text = parity.report(10, rows, ["redrive"])
    assert text.startswith("10 calls: 8 answered alike, 1 alike but for the error message's wording, 1 differ (")
    assert "| 1 | history | status | 400 | 200 |" in text
    assert text.endswith("Same status and code, own wording of the message: redrive\n")

"""`make bench`: run every benchmark in bench/ (each in its own process), print one table and write it
into docs/benchmarks.md (its generated section), the one place the docs take these figures from."""
import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.doc_sections import read_section, write_section

PROJECT_DIR = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
# Quick ones first; any other bench/*.py found is run after these.
PREFERRED_ORDER = ["overhead", "input_schema", "roundtrip", "startup", "wait_delay", "webhook_delay", "listing", "load"]
SCRIPT_TIME_LIMIT = 900
BENCHMARKS_PAGE = PROJECT_DIR / "docs" / "benchmarks.md"
SECTION = "bench"


def bench_modules() -> list[str]:
    """Every benchmark module in bench/, preferred ones first."""
    found = {path.stem for path in BENCH_DIR.glob("*.py")} - {"__init__", "run_all"}
    return [name for name in PREFERRED_ORDER if name in found] + sorted(found - set(PREFERRED_ORDER))


def run_module(name: str) -> tuple[list[str], int, float]:
    """Run `python -m bench.<name>`, echo its output; (headline lines, exit status, seconds)."""
    print(f"== python -m bench.{name}", flush=True)
    began = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=PROJECT_DIR, capture_output=True,
                              text=True, timeout=SCRIPT_TIME_LIMIT)
        output, status = done.stdout, done.returncode
        if done.stderr:
            print(done.stderr.rstrip(), flush=True)
    except subprocess.TimeoutExpired as err:
        partial = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        output, status = partial + f"\n(stopped after {SCRIPT_TIME_LIMIT} s)", -1
    seconds = time.monotonic() - began
    print(output.rstrip(), flush=True)
    # Indented lines are details; the others are the results.
    headlines = [line.strip() for line in output.splitlines() if line.strip() and not line[0].isspace()]
    return headlines or ["(no result printed)"], status, seconds


def _offline_environment() -> dict:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    environment.update(
        AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return environment


def package_size() -> tuple[list[str], int, float]:
    """P3: size of deployment.zip from `make package STAGE=prod` (skipped if it is slow or fails)."""
    # tools.package, as `make package` runs it: it also clears chalicelib/**/__pycache__, which
    # `chalice package` would zip as it finds it.
    from tools.package import package

    print("== make package STAGE=prod", flush=True)
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as out:
        try:
            done = package("prod", "cloudformation", Path(out), env=_offline_environment())
        except (OSError, subprocess.TimeoutExpired) as err:
            return [f"P3 deployment.zip: skipped ({err})"], -1, time.monotonic() - began
        seconds = time.monotonic() - began
        bundle = Path(out) / "deployment.zip"
        if done.returncode != 0 or not bundle.exists():
            return [f"P3 deployment.zip: skipped (chalice package failed: {done.stderr.strip()[-200:]})"], done.returncode, seconds
        size = bundle.stat().st_size
        # requirements.txt (fastjsonschema) rides in Chalice's managed layer, attached to every function.
        layer = Path(out) / "layer-deployment.zip"
        layer_size = layer.stat().st_size if layer.exists() else 0
    line = (f"P3 deployment.zip: {size / 1024:.1f} KiB ({size} bytes, make package STAGE=prod in {seconds:.1f} s); "
            f"its managed layer (requirements.txt) {layer_size / 1024:.1f} KiB")
    print(line, flush=True)
    return [line], 0, seconds


def print_table(rows: list[tuple[str, str, int, float]]) -> None:
    name_width = max([len("benchmark")] + [len(name) for name, *_ in rows])
    print()
    print(f"{'benchmark':<{name_width}}  {'exit':>4}  {'took':>7}  result")
    print(f"{'-' * name_width}  ----  -------  {'-' * 60}")
    for name, result, status, seconds in rows:
        took = "" if seconds is None else f"{seconds:.0f}s"
        print(f"{name:<{name_width}}  {'' if status is None else status:>4}  {took:>7}  {result}")


def _machine() -> str:
    """CPU model, cores, memory, Python and moto versions: what the figures depend on."""
    cpu = platform.processor() or platform.machine()
    memory = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)
        kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
        memory = f", {kib / 1024 ** 2:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    from importlib.metadata import version

    return (f"{os.cpu_count()} vCPU {cpu}{memory}, Python {platform.python_version()}, "
            f"moto {version('moto')} as the engine")


Row = tuple  # (benchmark, result, exit status, seconds, run date); continuation rows leave the others empty
_HEADER = "| benchmark | result | exit | took | run (UTC) |"


def markdown(rows: list, machine: str) -> str:
    """The generated section of docs/benchmarks.md: the machine, then one row per result."""
    lines = [f"Measured on {machine}.", "", _HEADER, "|---|---|---|---|---|"]
    for name, result, status, seconds, when in rows:
        took = "" if seconds is None else f"{seconds:.0f} s"
        cell = result.replace("|", "\\|")
        lines.append(f"| {name} | {cell} | {'' if status is None else status} | {took} | {when or ''} |")
    return "\n".join(lines) + "\n"


def rows_of(section: str) -> list:
    """The rows of a section markdown() wrote (an older one without dates takes its "Latest run:" date)."""
    dated = re.search(r"Latest run: (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC", section)
    rows = []
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("| benchmark |"):
            continue
        cells = [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        name, result, status, took = cells[:4]
        when = cells[4] if len(cells) > 4 else (dated.group(1) if dated and name else "")
        rows.append((name, result, int(status) if status else None, float(took[:-2]) if took else None, when or None))
    return rows


def merged(previous: list, fresh: list) -> list:
    """The previous rows, with those of every benchmark that ran again replaced, in the run order."""
    groups: dict = {}
    for rows in (previous, fresh):
        ran, current = {}, ""
        for row in rows:
            name = row[0] or current
            current = name
            ran.setdefault(name, []).append(row)
        groups.update(ran)
    order = ["package"] + bench_modules()
    return [row for name in sorted(groups, key=lambda n: order.index(n) if n in order else len(order))
            for row in groups[name]]


def main(argv=None) -> int:
    """Run the benchmarks named on the command line (default: all, and the package size)."""
    chosen = list(sys.argv[1:] if argv is None else argv)
    names = [name for name in bench_modules() if not chosen or name in chosen]
    rows = []
    results = [("package", package_size())] if not chosen or "package" in chosen else []
    results += [(name, run_module(name)) for name in names]
    now = f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M}"
    for name, (headlines, status, seconds) in results:
        for index, headline in enumerate(headlines):
            first = index == 0
            rows.append((name if first else "", headline, status if first else None, seconds if first else None,
                         now if first else None))
    print_table([row[:4] for row in rows])
    # A run of chosen benchmarks replaces their rows only; the others keep their last figures and dates.
    previous = [] if not chosen else rows_of(read_section(BENCHMARKS_PAGE, SECTION))
    write_section(BENCHMARKS_PAGE, SECTION, markdown(merged(previous, rows), _machine()))
    print(f"\nWritten to {BENCHMARKS_PAGE.relative_to(PROJECT_DIR)}.")
    return 0 if all(status == 0 for _, (_, status, _) in results) else 1


if __name__ == "__main__":
    sys.exit(main())

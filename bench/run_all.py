"""`make bench`: run every benchmark in bench/ (each in its own process), then print one table."""
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
# Quick ones first; any other bench/*.py found is run after these.
PREFERRED_ORDER = ["overhead", "roundtrip", "startup", "wait_delay", "webhook_delay", "approval_delay", "listing", "load"]
SCRIPT_TIME_LIMIT = 900


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
    line = f"P3 deployment.zip: {size / 1024:.1f} KiB ({size} bytes, make package STAGE=prod in {seconds:.1f} s)"
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


def main(argv=None) -> int:
    """Run the benchmarks named on the command line (default: all, and the package size)."""
    chosen = list(sys.argv[1:] if argv is None else argv)
    names = [name for name in bench_modules() if not chosen or name in chosen]
    rows = []
    results = [("package", package_size())] if not chosen or "package" in chosen else []
    results += [(name, run_module(name)) for name in names]
    for name, (headlines, status, seconds) in results:
        for index, headline in enumerate(headlines):
            first = index == 0
            rows.append((name if first else "", headline, status if first else None, seconds if first else None))
    print_table(rows)
    return 0 if all(status == 0 for _, (_, status, _) in results) else 1


if __name__ == "__main__":
    sys.exit(main())

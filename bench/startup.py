"""Benchmark: seconds from launching `python -m local.run` until GET /health answers 200."""
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

PROJECT_DIR = Path(__file__).resolve().parent.parent
RUNS = 5


def one_start() -> float:
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "local.run", "--port", "0", "--sfn-port", "0"],
        cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        for line in process.stdout:
            match = re.search(r"running at (http://127\.0\.0\.1:\d+)", line)
            if match:
                assert requests.get(match.group(1) + "/health", timeout=5).status_code == 200
                return time.perf_counter() - began
        raise RuntimeError("the stack exited before it was ready")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)


def main() -> None:
    timings = [one_start() for _ in range(RUNS)]
    print(f"local stack start to first /health 200, {RUNS} runs: "
          f"median {statistics.median(timings):.2f} s, min {min(timings):.2f} s, max {max(timings):.2f} s")


if __name__ == "__main__":
    main()

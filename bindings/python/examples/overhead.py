"""What the Python binding adds to a batch run, measured against the Rust API.

Runs the DLP rules (``datasets/dlp/rules.txt``, lookup-xor, accept bit) on the DLP
sample texts (``positives.txt`` cycled to ``--texts`` inputs, as the benchmark
profile's DLP row) and alternates, on one engine in one process:

- the Python call, ``engine.run(texts)``: reading the ``str`` inputs, the run, and
  building the ``Output`` tuples and the report dict;
- the Rust API alone, ``Engine::run_texts`` on the same texts already as bytes,
  called from Rust with the interpreter released (``Engine._time_rust_api``).

Same build, same engine, same texts, back to back, so the difference is the
binding's. Prints each pair's wall-clock and CPU time (the process's, all threads:
steadier than wall clock on a shared machine; the Rust side's CPU time also counts
copying its texts out of Python, a fraction of a millisecond), the medians and the
overhead.

    python bindings/python/examples/overhead.py [--texts 4000] [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from itertools import cycle, islice
from pathlib import Path
from typing import Dict, List

import pmsm

REPO = Path(__file__).resolve().parents[3]


def main() -> None:
    parser = argparse.ArgumentParser(description="binding overhead against the Rust API")
    parser.add_argument("--texts", type=int, default=4000, help="inputs per run (default 4000)")
    parser.add_argument("--repeats", type=int, default=15, help="pairs of runs (default 15)")
    args = parser.parse_args()

    samples = (REPO / "datasets" / "dlp" / "positives.txt").read_text().splitlines()
    texts = list(islice(cycle(samples), args.texts))
    raw = [t.encode() for t in texts]
    engine = pmsm.Engine(pmsm.compile_file(REPO / "datasets" / "dlp" / "rules.txt"))
    outputs, report = engine.run(texts)  # warm-up (and a check)
    assert all(o.accept for o in outputs)
    transitions = report["transitions"]
    wall: Dict[str, List[float]] = {"python": [], "rust": []}
    cpu: Dict[str, List[float]] = {"python": [], "rust": []}
    for i in range(args.repeats):
        # Alternate which goes first, so neither always runs on a warmer machine.
        order = ["python", "rust"] if i % 2 == 0 else ["rust", "python"]
        for which in order:
            cpu_start, start = time.process_time(), time.perf_counter()
            if which == "python":
                engine.run(texts)
                seconds = time.perf_counter() - start
            else:
                # Timed inside Rust around Engine::run_texts alone.
                seconds = engine._native._time_rust_api(raw, 1)[0]
            cpu[which].append(time.process_time() - cpu_start)
            wall[which].append(seconds)
        print(
            f"pair {i + 1:2}: wall python {wall['python'][-1]:.4f} s, rust {wall['rust'][-1]:.4f} s;"
            f" cpu python {cpu['python'][-1]:.4f} s, rust {cpu['rust'][-1]:.4f} s"
        )
    print(f"\n{args.texts} texts, {transitions:,} transitions, {args.repeats} pairs")
    for name, times in [("wall clock", wall), ("CPU time (all threads)", cpu)]:
        py, rust = statistics.median(times["python"]), statistics.median(times["rust"])
        pairs = [p / r - 1 for p, r in zip(times["python"], times["rust"])]
        print(
            f"{name}: Rust API median {rust:.4f} s ({transitions / rust:,.0f} transitions/s),"
            f" Python median {py:.4f} s ({transitions / py:,.0f} transitions/s);"
            f" overhead {100 * (py / rust - 1):+.2f} % of medians,"
            f" per-pair median {100 * statistics.median(pairs):+.2f} %"
        )

if __name__ == "__main__":
    main()

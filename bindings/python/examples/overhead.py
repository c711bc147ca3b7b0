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

    python bindings/python/examples/overhead.py [--texts 4000] [--repeats 15] [--pmsm PATH]

``--pmsm target/release/pmsm`` adds a third run to each round: ``pmsm bench`` (the
release build, fat LTO, mimalloc) on a profile of the same texts, whose ``seconds`` is
the engine's own timing of the run (``Report::seconds``); it is compared with the same
field of the Python run's report. That compares builds (the wheel's thin-LTO profile
and the system allocator against the binary's), not the binding.

Last, the binding's own work is timed alone: copying the texts into Rust, and turning
the outputs into ``Output`` tuples.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
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
    parser.add_argument("--pmsm", help="a pmsm binary: also alternate with its bench on the same texts")
    args = parser.parse_args()
    scratch = tempfile.TemporaryDirectory()
    profile = Path(scratch.name) / "dlp.toml"
    profile.write_text(
        'reveal = "accept"\nprotocols = ["lookup-xor"]\n[[run]]\nlabel = "DLP rules, sample texts"\n'
        f'machine = {{ regex_file = "{REPO / "datasets" / "dlp" / "rules.txt"}" }}\n'
        f'inputs = {{ file = "{REPO / "datasets" / "dlp" / "positives.txt"}", batch = {args.texts} }}\n'
    )
    engine_seconds: Dict[str, List[float]] = {"python": [], "rust": [], "pmsm bench": []}

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
                _, rep = engine.run(texts)
                seconds = time.perf_counter() - start
                engine_seconds["python"].append(rep["seconds"])
            else:
                # Timed inside Rust around Engine::run_texts alone.
                seconds, inner = engine._native._time_rust_api(raw, 1)[0]
                engine_seconds["rust"].append(inner)
            cpu[which].append(time.process_time() - cpu_start)
            wall[which].append(seconds)
        if args.pmsm:
            out = subprocess.run(
                [args.pmsm, "bench", "--profile", str(profile), "--json"], check=True, capture_output=True, text=True
            ).stdout
            result = json.loads(out)["results"][0]
            assert result["transitions"] == transitions and result["verified"]
            engine_seconds["pmsm bench"].append(result["seconds"])
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
    # Outside the engine's own timing of each run (Report::seconds: the parties' run)
    # lies what the Rust API adds (symbol checks, planning, decoding) and, for the
    # Python call, the binding too: measured within each run, so a busy machine slows
    # both parts of the same run alike.
    outside_py = statistics.median(w - e for w, e in zip(wall["python"], engine_seconds["python"]))
    outside_rust = statistics.median(w - e for w, e in zip(wall["rust"], engine_seconds["rust"]))
    rust_median = statistics.median(wall["rust"])
    print(
        f"outside the engine's own timing: Python call median {1e3 * outside_py:.2f} ms,"
        f" Rust API median {1e3 * outside_rust:.2f} ms per run; the difference is"
        f" {100 * (outside_py - outside_rust) / rust_median:+.3f} % of the Rust API's median run"
    )
    if args.pmsm:
        py, bench = statistics.median(engine_seconds["python"]), statistics.median(engine_seconds["pmsm bench"])
        print(
            f"engine's own timing (Report::seconds): pmsm bench (release build) median {bench:.4f} s"
            f" ({transitions / bench:,.0f} transitions/s), wheel build median {py:.4f} s"
            f" ({transitions / py:,.0f} transitions/s): {100 * (py / bench - 1):+.2f} %"
        )
    # The binding's own work alone: the texts into Rust (repeats=0 copies them and runs
    # nothing), and the outputs into Output tuples.
    reps = 50
    start = time.perf_counter()
    for _ in range(reps):
        engine._native._time_rust_api(raw, 0)
    copy_in = (time.perf_counter() - start) / reps
    raw_outputs, _ = engine._native.run(texts)
    start = time.perf_counter()
    for _ in range(reps):
        pmsm._outputs(raw_outputs)
    tuples = (time.perf_counter() - start) / reps
    rust = statistics.median(wall["rust"])
    print(
        f"binding's own work: {1e3 * copy_in:.2f} ms copying the texts in, {1e3 * tuples:.2f} ms building the"
        f" Output tuples: {100 * (copy_in + tuples) / rust:.3f} % of the Rust API's median run"
    )

if __name__ == "__main__":
    main()

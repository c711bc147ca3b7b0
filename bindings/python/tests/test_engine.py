"""The batch engine: every protocol equals plain Python; inputs of every kind; threads."""

from __future__ import annotations

import array
import random
import threading
import time
from typing import List, Sequence

import pytest

import pmsm
from conftest import DATASETS, random_machine

LOOKUPS = ["lookup-xor", "lookup-ring"]


def _inputs(rng: random.Random, symbols: int, count: int) -> List[List[int]]:
    return [[rng.randrange(symbols) for _ in range(rng.randrange(0, 15))] for _ in range(count)]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("protocol", LOOKUPS)
def test_lookups_equal_plain_python_on_random_machines(protocol: str, seed: int) -> None:
    rng = random.Random(seed)
    machine, plain = random_machine(rng, rng.randrange(1, 200), "abcdefghij"[: rng.randrange(1, 11)])
    inputs = _inputs(rng, machine.symbols, rng.randrange(1, 150))
    for reveal in ["state", "accept"]:
        outputs, report = pmsm.Engine(machine, protocol=protocol, reveal=reveal).run(inputs)
        if reveal == "state":
            assert [o.final_state for o in outputs] == [plain.run(i) for i in inputs]
            assert all(o.accept is None for o in outputs)
        else:
            assert [o.accept for o in outputs] == [plain.accepts(i) for i in inputs]
            assert all(o.final_state is None for o in outputs)
        assert [o.symbols for o in outputs] == [len(i) for i in inputs]
        assert report["transitions"] == sum(map(len, inputs))
        assert report["instances"] == len(inputs) and report["protocol"] == protocol


@pytest.mark.parametrize("protocol", ["naive", "seed-dpf"])
@pytest.mark.parametrize("seed", range(4))
def test_seed_protocols_equal_plain_python(protocol: str, seed: int) -> None:
    rng = random.Random(100 + seed)
    machine, plain = random_machine(rng, rng.randrange(2, 9), "ab")
    inputs = _inputs(rng, machine.symbols, 6)
    outputs, _ = pmsm.Engine(machine, protocol=protocol, reveal="state").run(inputs)
    assert [o.final_state for o in outputs] == [plain.run(i) for i in inputs]
    outputs, _ = pmsm.Engine(machine, protocol=protocol, reveal="accept").run(inputs)
    assert [o.accept for o in outputs] == [plain.accepts(i) for i in inputs]


def test_inputs_of_every_kind_give_the_same_answer(ab: pmsm.Dfa) -> None:
    engine = pmsm.Engine(ab, reveal="state")
    kinds: List[pmsm.Input] = [
        "ab",
        b"ab",
        bytearray(b"ab"),
        [0, 1],
        (0, 1),
        array.array("I", [0, 1]),
        memoryview(array.array("q", [0, 1])),
    ]
    outputs, _ = engine.run(kinds)
    assert [o.final_state for o in outputs] == [1] * len(kinds)
    # Any iterable of inputs.
    outputs, _ = engine.run(iter(["aaa", "ab"]))
    assert [o.final_state for o in outputs] == [3, 1]
    outputs, _ = engine.run([])
    assert outputs == []


def test_numpy_arrays_are_symbol_indices(ab: pmsm.Dfa) -> None:
    np = pytest.importorskip("numpy")
    engine = pmsm.Engine(ab, reveal="state")
    outputs, _ = engine.run([np.array([0, 1], dtype=np.uint32), np.array([0, 0, 0], dtype=np.int64)])
    assert [o.final_state for o in outputs] == [1, 3]
    outputs, _ = engine.run(np.array([[0, 1], [1, 1]], dtype=np.uint8))  # one input per row
    assert [o.final_state for o in outputs] == [1, 3]


def test_the_report_counts_every_link(dlp: pmsm.Dfa) -> None:
    texts = (DATASETS / "dlp" / "positives.txt").read_text().splitlines()
    outputs, report = pmsm.Engine(dlp).run(texts)
    assert all(o.accept for o in outputs)
    links = {"client_to_s0", "client_to_s1", "s0_to_s1", "s1_to_s0", "dealer_to_s0", "dealer_to_s1",
             "s0_to_client", "s1_to_client"}
    assert set(report["bytes"]) == links and all(v > 0 for v in report["bytes"].values())
    assert report["classes"] == dlp.info()["classes"]
    assert report["rounds"] == len(report["round_seconds"]) and report["seconds"] > 0
    # One opening of n = ks + kc bits each way per transition (and the class lookups).
    online_bits = 8 * (report["bytes"]["s0_to_s1"] + report["bytes"]["s1_to_s0"]) / report["transitions"]
    assert 2 * 15 <= online_bits < 100


def test_threads_share_one_engine() -> None:
    rng = random.Random(7)
    machine, plain = random_machine(rng, 50, "abcdef")
    engine = pmsm.Engine(machine, reveal="state")
    errors: List[str] = []

    def work(seed: int) -> None:
        r = random.Random(seed)
        for _ in range(4):
            inputs = _inputs(r, machine.symbols, r.randrange(1, 80))
            outputs, _ = engine.run(inputs)
            if [o.final_state for o in outputs] != [plain.run(i) for i in inputs]:
                errors.append(f"thread {seed}: wrong outputs")

    threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_the_gil_is_released_while_the_engine_runs(dlp: pmsm.Dfa) -> None:
    """The main thread keeps running Python while another thread is inside run()."""
    texts: Sequence[str] = (DATASETS / "dlp" / "positives.txt").read_text().splitlines() * 600
    engine = pmsm.Engine(dlp)
    done = threading.Event()
    started = threading.Event()
    elapsed: List[float] = []

    def work() -> None:
        started.set()
        t0 = time.perf_counter()
        engine.run(texts)
        elapsed.append(time.perf_counter() - t0)
        done.set()

    t = threading.Thread(target=work)
    t.start()
    started.wait()
    last = time.perf_counter()
    longest = 0.0
    while not done.is_set():
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
    t.join()
    # Held for the whole run, the GIL would stop this loop once for about the run's
    # length; released, the loop waits at most a few switch intervals at a time.
    assert elapsed[0] > 0.2, elapsed
    assert longest < elapsed[0] / 4, (longest, elapsed[0])


def test_plain_machine_defaults_to_the_final_state(ab: pmsm.Dfa, dlp: pmsm.Dfa) -> None:
    assert pmsm.Engine(ab).reveal == "state"
    assert pmsm.Engine(dlp).reveal == "accept"
    e = pmsm.Engine(ab, protocol="lookup-ring", reveal="accept")
    assert (e.protocol, e.reveal, e.machine) == ("lookup-ring", "accept", ab)

"""The in-process service: interleavings equal plaintext, threads, asyncio."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Dict, List, Tuple

import pytest

import pmsm
from conftest import PlainDfa, random_machine


def _machines(rng: random.Random) -> Dict[str, Tuple[pmsm.Dfa, PlainDfa, str, str]]:
    out = {}
    for i, (protocol, reveal) in enumerate(
        [("lookup-xor", "state"), ("lookup-xor", "accept"), ("lookup-ring", "state"), ("lookup-ring", "accept")]
    ):
        m, plain = random_machine(rng, rng.randrange(1, 60), "abcdefgh"[: rng.randrange(1, 9)])
        out[f"m{i}"] = (m, plain, protocol, reveal)
    return out


def _check(plain: PlainDfa, reveal: str, symbols: List[int], got: pmsm.Output) -> None:
    assert got.symbols == len(symbols)
    if reveal == "state":
        assert got == pmsm.Output(plain.run(symbols), None, len(symbols))
    else:
        assert got == pmsm.Output(None, plain.accepts(symbols), len(symbols))


@pytest.mark.parametrize("seed", range(3))
def test_random_interleavings_equal_plaintext(seed: int) -> None:
    rng = random.Random(seed)
    machines = _machines(rng)
    served = {name: (m, protocol, reveal) for name, (m, _, protocol, reveal) in machines.items()}
    with pmsm.Service(served, dealer_threads=1) as service:
        clients = {name: service.connect(name) for name in machines}
        open_: List[Tuple[str, pmsm.Session, List[int]]] = []
        for _ in range(300):
            op = rng.random()
            if op < 0.2 or not open_:
                name = rng.choice(list(machines))
                open_.append((name, clients[name].open(), []))
                continue
            i = rng.randrange(len(open_))
            name, s, so_far = open_[i]
            m, plain, _, reveal = machines[name]
            if op < 0.6:
                pushed = [rng.randrange(m.symbols) for _ in range(rng.randrange(0, 6))]
                if rng.random() < 0.5:
                    clients[name].push(s, pushed)
                else:
                    clients[name].push(s, "".join(m.alphabet[a] for a in pushed))
                so_far.extend(pushed)
                assert s.pushed == len(so_far)
            elif op < 0.9:
                _check(plain, reveal, so_far, clients[name].release(s))
            else:
                clients[name].close(s)
                assert s.closed
                open_.pop(i)
        for name, s, so_far in open_:
            m, plain, _, reveal = machines[name]
            _check(plain, reveal, so_far, clients[name].release(s))
        stats = service.stats()
        assert stats["transitions"] > 0 and stats["waves"] > 0
        assert all(v > 0 for k, v in service.bytes().items() if k.startswith("client_to"))
        names = [i["name"] for i in service.interfaces()]
        assert names == sorted(machines)


def test_client_threads_equal_plaintext() -> None:
    rng = random.Random(11)
    m, plain = random_machine(rng, 40, "abcd")
    errors: List[str] = []
    with pmsm.Service({"m": m}, reveal="state") as service:
        client = service.connect("m")

        def work(seed: int) -> None:
            r = random.Random(seed)
            s = client.open()
            so_far: List[int] = []
            for _ in range(15):
                pushed = [r.randrange(4) for _ in range(r.randrange(1, 8))]
                client.push(s, pushed)
                so_far.extend(pushed)
                if client.release(s).final_state != plain.run(so_far):
                    errors.append(f"thread {seed}")
            client.close(s)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


def test_interface_holds_no_table(dlp: pmsm.Dfa) -> None:
    with pmsm.Service({"dlp": dlp}) as service:
        client = service.connect("dlp")
        face = client.interface
        assert face["name"] == "dlp" and face["reveal"] == "accept" and face["protocol"] == "lookup-xor"
        assert face["fingerprint"] == dlp.info()["fingerprint"]
        assert "delta" not in face and "accepting" not in face
        s = client.open()
        client.push(s, "config: aws_key=AKIAIOSFODNN7EX")
        assert client.release(s).accept is False
        client.push(s, "AMPLE")
        assert client.release(s) == pmsm.Output(None, True, 36)
        client.close(s)


def test_async_sessions_under_asyncio() -> None:
    rng = random.Random(5)
    m, plain = random_machine(rng, 30, "abc")
    words = [[rng.randrange(3) for _ in range(rng.randrange(1, 12))] for _ in range(200)]

    async def one(client: pmsm.Client, word: List[int]) -> pmsm.Output:
        s = await client.open_async()
        half = len(word) // 2
        await client.push_async(s, word[:half])
        await client.push_async(s, word[half:])
        out = await client.release_async(s)
        await client.close_async(s)
        assert s.closed
        return out

    async def main(client: pmsm.Client) -> Tuple[List[pmsm.Output], int]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        t = asyncio.ensure_future(ticker())
        outs = await asyncio.gather(*(one(client, w) for w in words))
        stop.set()
        await t
        return list(outs), ticks

    with pmsm.Service({"m": m}, reveal="state") as service:
        client = service.connect("m")
        start = time.perf_counter()
        outs, ticks = asyncio.run(main(client))
        elapsed = time.perf_counter() - start
    assert [o.final_state for o in outs] == [plain.run(w) for w in words]
    # The loop went on while the calls were in flight.
    assert ticks >= min(5, int(elapsed * 100)), (ticks, elapsed)


def test_async_errors_are_raised_in_the_awaiting_task(ab: pmsm.Dfa) -> None:
    async def main(client: pmsm.Client) -> None:
        s = await client.open_async()
        with pytest.raises(pmsm.UnknownSymbolError):
            await client.push_async(s, "abz")
        await client.close_async(s)
        with pytest.raises(pmsm.SessionClosedError):
            await client.release_async(s)
        # One request of a session at a time.
        s2 = await client.open_async()
        first = asyncio.ensure_future(client.push_async(s2, "ab" * 500))
        await asyncio.sleep(0)
        results = await asyncio.gather(client.release_async(s2), return_exceptions=True)
        await first
        assert isinstance(results[0], (pmsm.Output, pmsm.ServiceError))
        if isinstance(results[0], pmsm.ServiceError):
            assert "busy" in str(results[0])
        out = await client.release_async(s2)
        assert out.symbols == 1000

    with pmsm.Service({"ab": ab}) as service:
        asyncio.run(main(service.connect("ab")))

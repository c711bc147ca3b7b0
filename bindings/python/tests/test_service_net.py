"""The service over the network: a real ``pmsm dealer`` and ``pmsm serve --party 0/1``
(see ``cluster.py``), clients through :func:`pmsm.connect`."""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

import pmsm
from cluster import Cluster, pmsm_bin
from conftest import PlainDfa, random_machine

Machines = Dict[str, Tuple[pmsm.Dfa, PlainDfa, str, str]]


def _machines() -> Machines:
    rng = random.Random(2026)
    out: Machines = {}
    for i, (protocol, reveal) in enumerate(
        [("lookup-xor", "state"), ("lookup-xor", "accept"), ("lookup-ring", "state"), ("lookup-ring", "accept")]
    ):
        m, plain = random_machine(rng, rng.randrange(2, 40), "abcdef"[: rng.randrange(2, 7)])
        out[f"m{i}"] = (m, plain, protocol, reveal)
    return out


MACHINES = _machines()


def _served(machines: Machines) -> Dict[str, Tuple[pmsm.Dfa, str, str]]:
    return {name: (m, protocol, reveal) for name, (m, _, protocol, reveal) in machines.items()}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    binary = pmsm_bin()
    c = Cluster(binary, tmp_path_factory.mktemp("net"), _served(MACHINES))
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def clients(cluster: Cluster) -> Dict[str, pmsm.Client]:
    return {name: cluster.connect_when_linked(name) for name in MACHINES}


def _check(plain: PlainDfa, reveal: str, symbols: List[int], got: pmsm.Output) -> None:
    if reveal == "state":
        assert got == pmsm.Output(plain.run(symbols), None, len(symbols))
    else:
        assert got == pmsm.Output(None, plain.accepts(symbols), len(symbols))


@pytest.mark.parametrize("seed", range(2))
def test_network_releases_equal_plaintext(clients: Dict[str, pmsm.Client], seed: int) -> None:
    rng = random.Random(seed)
    open_: List[Tuple[str, pmsm.Session, List[int]]] = []
    for _ in range(120):
        op = rng.random()
        if op < 0.2 or not open_:
            name = rng.choice(list(MACHINES))
            open_.append((name, clients[name].open(), []))
            continue
        i = rng.randrange(len(open_))
        name, s, so_far = open_[i]
        m, plain, _, reveal = MACHINES[name]
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
        m, plain, _, reveal = MACHINES[name]
        _check(plain, reveal, so_far, clients[name].release(s))
        clients[name].close(s)
        with pytest.raises(pmsm.SessionClosedError):
            clients[name].release(s)


def test_interface_is_the_machines(clients: Dict[str, pmsm.Client]) -> None:
    for name, (m, _, protocol, reveal) in MACHINES.items():
        face = clients[name].interface
        assert face["name"] == name and face["protocol"] == protocol and face["reveal"] == reveal
        assert face["fingerprint"] == m.info()["fingerprint"]
        assert "delta" not in face
        assert clients[name].machine == name


def test_pin(cluster: Cluster, clients: Dict[str, pmsm.Client]) -> None:
    fingerprint = MACHINES["m1"][0].info()["fingerprint"]
    assert cluster.connect("m1", pin=fingerprint[:16]).interface["fingerprint"] == fingerprint
    wrong = "".join("0" if c != "0" else "1" for c in fingerprint[:20])
    with pytest.raises(pmsm.PinMismatchError, match=f"not the pinned {wrong}"):
        cluster.connect("m1", pin=wrong)
    with pytest.raises(pmsm.ParameterError, match="16 to 64 hex digits"):
        cluster.connect("m1", pin="abc")


def test_unknown_machine(cluster: Cluster, clients: Dict[str, pmsm.Client]) -> None:
    with pytest.raises(pmsm.UnknownMachineError, match=r'"nope".*m0, m1, m2, m3'):
        cluster.connect("nope")


def test_bad_identity_and_unreachable_server(cluster: Cluster, tmp_path: Path) -> None:
    with pytest.raises(pmsm.ParameterError, match="client identity: .*missing.pem"):
        pmsm.connect("m0", *cluster.servers, ca=cluster.certs / "ca.pem", cert=tmp_path / "missing.pem",
                     key=cluster.certs / "client.key")
    with pytest.raises(pmsm.ParameterError, match="certs="):
        pmsm.connect("m0", *cluster.servers)
    # A server's own certificate is not a client's.
    with pytest.raises(pmsm.ParameterError, match="not for client.pmsm"):
        pmsm.connect("m0", *cluster.servers, ca=cluster.certs / "ca.pem", cert=cluster.certs / "server-0.pem",
                     key=cluster.certs / "server-0.key")
    # Nothing listens on port 1 of the loopback.
    with pytest.raises(pmsm.ServiceUnavailableError, match="server 0 at 127.0.0.1:1"):
        pmsm.connect("m0", "127.0.0.1:1", cluster.servers[1], certs=cluster.certs, timeout=5)


def test_threads_share_a_network_client(clients: Dict[str, pmsm.Client]) -> None:
    m, plain, _, _ = MACHINES["m2"]
    client = clients["m2"]
    errors: List[str] = []

    def work(seed: int) -> None:
        try:
            r = random.Random(seed)
            s = client.open()
            so_far: List[int] = []
            for _ in range(10):
                pushed = [r.randrange(m.symbols) for _ in range(r.randrange(1, 6))]
                client.push(s, pushed)
                so_far.extend(pushed)
                got = client.release(s).final_state
                if got != plain.run(so_far):
                    errors.append(f"thread {seed}: {got} after {so_far}")
            client.close(s)
        except pmsm.Error as e:  # a thread's exception would not fail the test by itself
            errors.append(f"thread {seed}: {e!r}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_async_sessions_run_concurrently(cluster: Cluster, clients: Dict[str, pmsm.Client]) -> None:
    rng = random.Random(9)
    m, plain, _, _ = MACHINES["m0"]
    words = [[rng.randrange(m.symbols) for _ in range(rng.randrange(1, 10))] for _ in range(60)]

    async def one(client: pmsm.Client, word: List[int]) -> pmsm.Output:
        s = await client.open_async()
        half = len(word) // 2
        await client.push_async(s, word[:half])
        await client.push_async(s, word[half:])
        out = await client.release_async(s)
        await client.close_async(s)
        return out

    async def main() -> Tuple[List[pmsm.Output], int]:
        client = await pmsm.connect_async("m0", *cluster.servers, certs=cluster.certs)
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
        with pytest.raises(pmsm.UnknownMachineError):
            await pmsm.connect_async("nope", *cluster.servers, certs=cluster.certs)
        return list(outs), ticks

    outs, ticks = asyncio.run(main())
    assert [o.final_state for o in outs] == [plain.run(w) for w in words]
    assert ticks > 0  # the loop ran while the calls were in flight


def test_a_stopped_server_fails_clearly(tmp_path: Path) -> None:
    m, plain, protocol, reveal = MACHINES["m2"]
    c = Cluster(pmsm_bin(), tmp_path, {"m": (m, protocol, reveal)})
    try:
        client = c.connect_when_linked("m")
        s = client.open()
        client.push(s, [0, 1])
        assert client.release(s).final_state == plain.run([0, 1])
        c.s1.stop()
        with pytest.raises((pmsm.ServiceStoppedError, pmsm.ServiceUnavailableError)) as e:
            for _ in range(50):  # the connection's end may take a moment to be seen
                client.push(s, [0])
                client.release(s)
        assert str(e.value), "the error says why"
        with pytest.raises(pmsm.ServiceUnavailableError, match="server 1"):
            c.connect("m")
    finally:
        c.stop()

"""Real service processes for the network tests: ``pmsm dealer`` and ``pmsm serve
--party 0/1`` with certificates made by ``pmsm certs``, on free loopback ports.

The binary is ``$PMSM_BIN`` (default ``target/release/pmsm`` in the repository; build
it with ``cargo build --release -p pmsm-engine --bin pmsm``). Without it the network
tests are skipped, unless ``PMSM_REQUIRE_NET=1`` (as in CI), when they fail.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import pytest

import pmsm

REPO = Path(__file__).resolve().parents[3]

#: How long a party may take to print its address, and the servers to link.
START_SECONDS = 30.0


def pmsm_bin() -> Path:
    """The ``pmsm`` binary, or skip (fail under ``PMSM_REQUIRE_NET=1``)."""
    path = Path(os.environ.get("PMSM_BIN", str(REPO / "target" / "release" / "pmsm")))
    if path.is_file() and os.access(path, os.X_OK):
        return path
    why = (
        f"no pmsm binary at {path} (set PMSM_BIN, or build it: "
        "cargo build --release -p pmsm-engine --bin pmsm)"
    )
    if os.environ.get("PMSM_REQUIRE_NET") == "1":
        pytest.fail(f"PMSM_REQUIRE_NET=1 but {why}", pytrace=False)
    pytest.skip(why)


def make_certs(binary: Path, folder: Path) -> Path:
    """A development CA and the parties' certificates, by ``pmsm certs``."""
    subprocess.run(
        [str(binary), "certs", "--out", str(folder)], check=True, capture_output=True, timeout=60
    )
    return folder


class Party:
    """One ``pmsm`` process; its address is the ``listening HOST:PORT`` line it prints."""

    def __init__(self, args: Sequence[str], log: Path) -> None:
        self.log = log
        self._err = open(log, "ab")
        self.proc = subprocess.Popen(
            list(args), stdout=subprocess.PIPE, stderr=self._err, stdin=subprocess.DEVNULL
        )
        try:
            self.addr = self._address()
        except BaseException:
            self.stop()
            raise

    def _address(self) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_SECONDS
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            if not ready:
                raise RuntimeError(f"{self.log.name}: no address within {START_SECONDS} s")
            chunk = os.read(self.proc.stdout.fileno(), 256)
            if not chunk:
                raise RuntimeError(f"{self.log.name}: exited before printing its address: {self.log.read_text()}")
            line += chunk
        text = line.decode().strip()
        if not text.startswith("listening "):
            raise RuntimeError(f"{self.log.name}: expected 'listening HOST:PORT', got {text!r}")
        return text.split(" ", 1)[1]

    def stop(self) -> None:
        """Kills the process (SIGKILL) and reaps it; a second call does nothing."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._err.close()


class Cluster:
    """A dealer and two servers serving ``machines``: name → (dfa, protocol, reveal)."""

    def __init__(self, binary: Path, folder: Path, machines: Dict[str, Tuple[pmsm.Dfa, str, str]]) -> None:
        self.folder = folder
        self.certs = make_certs(binary, folder / "certs")
        self.specs: List[str] = []
        for name, (dfa, protocol, reveal) in machines.items():
            path = folder / f"{name}.json"
            path.write_text(dfa.to_json())
            self.specs += ["--machine", f"{name}={path},protocol={protocol},reveal={reveal}"]
        self.binary = binary
        self.parties: List[Party] = []
        try:
            self.dealer = self._party(["dealer"], "dealer.log")
            self.s0 = self._party(["serve", "--party", "0", "--dealer", self.dealer.addr], "s0.log")
            self.s1 = self._party(
                ["serve", "--party", "1", "--peer", self.s0.addr, "--dealer", self.dealer.addr], "s1.log"
            )
        except BaseException:
            self.stop()
            raise

    def _party(self, role: List[str], log: str) -> Party:
        args = [str(self.binary), *role, "--certs", str(self.certs), "--listen", "127.0.0.1:0", *self.specs]
        p = Party(args, self.folder / log)
        self.parties.append(p)
        return p

    @property
    def servers(self) -> Tuple[str, str]:
        return self.s0.addr, self.s1.addr

    def connect(self, machine: str, pin: Optional[str] = None) -> pmsm.Client:
        return pmsm.connect(machine, *self.servers, certs=self.certs, pin=pin)

    def connect_when_linked(self, machine: str) -> pmsm.Client:
        """A client once the servers have linked with each other and the dealer (until
        then a fresh connection's requests are refused as unavailable)."""
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                client = self.connect(machine)
                s = client.open()
                client.close(s)
                return client
            except pmsm.ServiceUnavailableError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the servers never linked:\n{self.logs()}") from None
                time.sleep(0.1)

    def logs(self) -> str:
        return "".join(f"== {p.log.name}\n{p.log.read_text(errors='replace')}" for p in self.parties)

    def stop(self) -> None:
        for p in self.parties:
            p.stop()

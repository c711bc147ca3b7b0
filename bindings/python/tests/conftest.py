"""Shared fixtures: the repository's datasets and a plain-Python DFA evaluator."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Dict, List, Sequence

import pytest

import pmsm

REPO = Path(__file__).resolve().parents[3]
DATASETS = REPO / "datasets"


class PlainDfa:
    """A DFA evaluated in plain Python: the reference the engine's answers must equal."""

    def __init__(self, table: Dict[str, Any]) -> None:
        self.table = table
        alphabet = table["alphabet"]
        self.index = None if alphabet == "bytes" else {c: i for i, c in enumerate(alphabet)}

    def symbols_of(self, text: str) -> List[int]:
        if self.index is None:
            return list(text.encode())
        return [self.index[c] for c in text]

    def run(self, symbols: Sequence[int]) -> int:
        s = self.table["start"]
        for a in symbols:
            s = self.table["delta"][s][a]
        return int(s)

    def accepts(self, symbols: Sequence[int]) -> bool:
        return self.run(symbols) in self.table["accepting"]


def random_table(rng: random.Random, states: int, alphabet: str) -> Dict[str, Any]:
    """A random total DFA in the JSON table format."""
    k = len(alphabet)
    return {
        "states": states,
        "alphabet": list(alphabet),
        "start": rng.randrange(states),
        "accepting": sorted(rng.sample(range(states), rng.randrange(states + 1))),
        "delta": [[rng.randrange(states) for _ in range(k)] for _ in range(states)],
    }


def random_machine(rng: random.Random, states: int, alphabet: str) -> tuple[pmsm.Dfa, PlainDfa]:
    table = random_table(rng, states, alphabet)
    return pmsm.Dfa.from_json(json.dumps(table)), PlainDfa(table)


@pytest.fixture(scope="session")
def ab() -> pmsm.Dfa:
    return pmsm.Dfa.from_json(DATASETS / "ab.json")


@pytest.fixture(scope="session")
def dlp() -> pmsm.Dfa:
    return pmsm.compile_file(DATASETS / "dlp" / "rules.txt")

"""Machines: JSON, the regex compiler against Python's re, info, the seed's polynomials."""

from __future__ import annotations

import json
import random
import re

import pytest

import pmsm
from conftest import DATASETS, PlainDfa, random_table


def test_from_json_takes_text_paths_and_strings(ab: pmsm.Dfa) -> None:
    path = DATASETS / "ab.json"
    assert pmsm.Dfa.from_json(str(path)) == ab
    assert pmsm.Dfa.from_json(path.read_text()) == ab
    assert (ab.states, ab.symbols, ab.start, ab.alphabet) == (4, 2, 0, "ab")
    assert ab.accepting == [1]
    assert ab.delta == [[2, 3], [3, 3], [3, 1], [3, 3]]
    assert ab.natural_output == "state"
    assert pmsm.Dfa.from_json(ab.to_json()) == ab


def test_info_reports_sizes_classes_and_fingerprint(ab: pmsm.Dfa, dlp: pmsm.Dfa) -> None:
    info = ab.info()
    assert info["states"] == 4 and info["symbols"] == 2 and info["classes"] == 2
    assert (info["ks"], info["ka"], info["n"]) == (2, 1, 3)
    assert len(info["fingerprint"]) == 64 and int(info["fingerprint"], 16) >= 0
    d = dlp.info()
    assert d["alphabet"] == "bytes" and d["symbols"] == 256 and d["output"] == "accept"
    assert d["classes"] < 256 and d["n_with_classes"] < d["n"]
    assert d["fingerprint"] != info["fingerprint"]
    # The fingerprint covers the table, not the natural output.
    table = json.loads(ab.to_json())
    table["output"] = "accept"
    assert pmsm.Dfa.from_json(json.dumps(table)).info()["fingerprint"] == info["fingerprint"]


def test_encode_and_plaintext_eval(ab: pmsm.Dfa) -> None:
    assert ab.encode("abba") == [0, 1, 1, 0]
    assert ab.eval("ab") == (1, True)
    assert ab.eval([0, 0, 0]) == (3, False)


def test_seed_polynomials_are_the_seeds() -> None:
    """f(x, y) for the seed's "ab" machine, as the seed's notebook prints it."""
    ab = pmsm.Dfa.from_json(DATASETS / "ab.json")
    polys = ab.polynomials()
    p = polys["p"]
    assert p == 65521 == pmsm.FIELD_MODULUS
    # 2 + y + 10922x + 54602xy + 65520x² + 65518x²y + 54601x³ + 10921x³y
    assert polys["f"] == [[2, 1], [10922, 54602], [65520, 65518], [54601, 10921]]
    for s in range(ab.states):
        for a in range(ab.symbols):
            f = sum(c * s**i * a**j for i, row in enumerate(polys["f"]) for j, c in enumerate(row)) % p
            fa = sum(c * s**i for i, c in enumerate(polys["f_a"][a])) % p
            assert f == fa == ab.delta[s][a]
        acc = sum(c * s**i for i, c in enumerate(polys["accept"])) % p
        assert acc == int(s in ab.accepting)


@pytest.mark.parametrize("seed", range(30))
def test_random_json_machines_evaluate_as_plain_python(seed: int) -> None:
    rng = random.Random(seed)
    table = random_table(rng, rng.randrange(1, 40), "xyz01"[: rng.randrange(1, 6)])
    m = pmsm.Dfa.from_json(json.dumps(table))
    plain = PlainDfa(table)
    for _ in range(20):
        word = [rng.randrange(m.symbols) for _ in range(rng.randrange(12))]
        assert m.eval(word) == (plain.run(word), plain.accepts(word))


def _random_pattern(rng: random.Random, depth: int = 0) -> str:
    """A pattern in the syntax Rust's regex and Python's re read alike (ASCII)."""
    atoms = ["a", "b", "c", "[ab]", "[^a]", "(?:ab|c)", "."]
    if depth > 2 or rng.random() < 0.4:
        return rng.choice(atoms)
    left, right = _random_pattern(rng, depth + 1), _random_pattern(rng, depth + 1)
    form = rng.randrange(6)
    if form == 0:
        return left + right
    if form == 1:
        return f"(?:{left}|{right})"
    if form == 2:
        return f"(?:{left})*{right}"
    if form == 3:
        return f"(?:{left})+"
    if form == 4:
        return f"{left}(?:{right})?"
    return f"(?:{left}){{1,3}}{right}"


@pytest.mark.parametrize("seed", range(40))
def test_compiled_patterns_agree_with_python_re(seed: int) -> None:
    rng = random.Random(1000 + seed)
    patterns = [_random_pattern(rng) for _ in range(rng.randrange(1, 4))]
    contains = pmsm.compile(patterns)
    full = pmsm.compile(patterns, full_match=True)
    assert contains.natural_output == "accept"
    searchers = [re.compile(p) for p in patterns]
    texts = ["".join(rng.choice("abcd\n") for _ in range(rng.randrange(10))) for _ in range(40)]
    for t in texts:
        assert contains.eval(t)[1] == any(s.search(t) for s in searchers), (patterns, t)
        assert full.eval(t)[1] == any(s.fullmatch(t) for s in searchers), (patterns, t)
    outputs, _ = pmsm.Engine(contains).run(texts)
    assert [o.accept for o in outputs] == [any(s.search(t) for s in searchers) for t in texts]


def test_compile_file_matches_the_dlp_samples(dlp: pmsm.Dfa) -> None:
    positives = (DATASETS / "dlp" / "positives.txt").read_text().splitlines()
    negatives = (DATASETS / "dlp" / "negatives.txt").read_text().splitlines()
    assert all(dlp.eval(t)[1] for t in positives)
    assert not any(dlp.eval(t)[1] for t in negatives)


def test_compile_with_an_alphabet_restricts_the_machine() -> None:
    m = pmsm.compile("GAATTC", alphabet="ACGT")
    assert m.alphabet == "ACGT" and m.symbols == 4
    assert m.eval("TTGAATTCA")[1] and not m.eval("GAATT")[1]


def test_random_dfa_is_reproducible() -> None:
    a, b = pmsm.random_dfa(16, 8, seed=3), pmsm.random_dfa(16, 8, seed=3)
    assert a == b and hash(a) == hash(b)
    assert a != pmsm.random_dfa(16, 8, seed=4)
    assert pmsm.random_dfa(4, 256).alphabet == "bytes"

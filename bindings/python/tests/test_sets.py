"""Machine sets: gitleaks rules and ``(rule_id, regex)`` pairs in batch, against
Python's ``re`` (ASCII) on the vendored planted and clean texts."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Dict, List

import pytest

import pmsm
from conftest import DATASETS

GITLEAKS = DATASETS / "gitleaks"

# A few rules of the vendored default configuration. Their regexes mean the same in Go's
# RE2 and Python's `re` (ASCII) except doppler-api-token, whose mid-pattern `(?i)` Python
# refuses (it is in the set, and left out of the comparison); pkcs12-file has no regex.
RULES = [
    "age-secret-key",
    "aws-access-token",
    "doppler-api-token",
    "github-pat",
    "gitlab-pat",
    "npm-access-token",
    "shopify-access-token",
    "slack-bot-token",
    "stripe-access-token",
    "pkcs12-file",
]


def _blocks(text: str) -> Dict[str, str]:
    """Each ``[[rules]]`` block of a gitleaks file (sub-tables included), by id."""
    head, *blocks = text.split("[[rules]]\n")
    out = {}
    for b in blocks:
        m = re.search(r'^id = "([^"]+)"', b, re.M)
        assert m is not None, b[:80]
        out[m.group(1)] = "[[rules]]\n" + b
    return out


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    blocks = _blocks((GITLEAKS / "gitleaks.toml").read_text())
    path = tmp_path_factory.mktemp("gitleaks") / "subset.toml"
    path.write_text('title = "a few rules of the default configuration"\n\n' + "".join(blocks[r] for r in RULES))
    return path


def _reference(path: Path) -> Dict[str, "re.Pattern[str]"]:
    """Python's `re` for the subset's rules that it reads (ASCII, as Go's RE2)."""
    text = path.read_text()
    out = {}
    for id_, block in _blocks(text).items():
        m = re.search(r"^regex = '''(.*)'''$", block, re.M)
        if m is None:
            continue
        try:
            out[id_] = re.compile(m.group(1), re.ASCII)
        except re.error:
            continue
    return out


def _lines(path: Path) -> List[str]:
    # Lines end at "\n" only: planted secrets may hold characters that `splitlines`
    # would also break at (form feeds, U+2028, ...).
    return path.read_text().rstrip("\n").split("\n")


def _texts() -> List[str]:
    ids = _lines(GITLEAKS / "positives-rules.txt")
    positives = _lines(GITLEAKS / "positives.txt")
    assert len(ids) == len(positives)
    planted = [t for t, i in zip(positives, ids) if i in RULES]
    clean = _lines(GITLEAKS / "negatives.txt")[:80]
    # Secrets of other rules are texts these rules must not flag (or flag as `re` does).
    others = [t for t, i in zip(positives, ids) if i not in RULES][:40]
    return planted + clean + others


def test_gitleaks_info_lists_rules_refused_and_groups(subset: Path) -> None:
    s = pmsm.gitleaks(subset)
    info = s.info()
    assert info["policy"] == "rules" and s.policy == "rules"
    assert info["rules"] == [r for r in RULES if r != "pkcs12-file"] == s.ids
    assert len(s) == len(RULES) - 1
    assert info["refused"] == [{"id": "pkcs12-file", "reason": "no regex (a path-only rule)"}]
    assert s.refused == [("pkcs12-file", "no regex (a path-only rule)")]
    grouped = sorted(r for g in info["groups"] for r in g["rules"])
    assert grouped == sorted(info["rules"])
    for g in info["groups"]:
        assert g["states"] >= 2 and g["classes"] >= 2 and g["n"] > 0
    assert info["output_bits"] == len(info["rules"])
    assert pmsm.gitleaks(subset, reveal="count").info()["output_bits"] == 4  # ceil(log2(10))
    assert "MachineSet(rules=9, refused=1" in repr(s)


@pytest.mark.parametrize("reveal", ["rules", "count", "any"])
def test_set_results_equal_python_re(subset: Path, reveal: str) -> None:
    s = pmsm.gitleaks(subset, reveal="rules")
    reference = _reference(subset)
    assert set(reference) == set(s.ids) - {"doppler-api-token"}
    texts = _texts()
    engine = pmsm.Engine(s, reveal=reveal, threads=1)
    assert engine.reveal == reveal and engine.machine is s
    outputs, report = engine.run(texts)
    assert report["instances"] == len(texts) and report["transitions"] == sum(len(t.encode()) for t in texts)
    planted_hits = 0
    for text, out in zip(texts, outputs):
        plain = s.matches(text.encode())
        compared = [r for r in plain if r in reference]
        want = [r for r in s.ids if r in reference and reference[r].search(text)]
        assert compared == want, text
        assert out.symbols == len(text.encode())
        assert out.any == bool(plain)
        planted_hits += bool(want)
        if reveal == "rules":
            assert out.rules == plain and out.matched is None
        elif reveal == "count":
            assert out.matched == len(plain) and out.rules is None
        else:
            assert out.rules is None and out.matched is None
    assert planted_hits >= 16  # the compared rules' two planted texts each


def test_machine_set_from_pairs(tmp_path: Path) -> None:
    rules = [("aws", r"AKIA[0-9A-Z]{16}"), ("pem", r"-----BEGIN [A-Z ]*PRIVATE KEY"), ("bad", r"a(?=b)")]
    s = pmsm.machine_set(rules, reveal="rules")
    assert s.ids == ["aws", "pem"]
    assert [r[0] for r in s.refused] == ["bad"] and "look-around" in s.refused[0][1]
    texts = ["key AKIAIOSFODNN7EXAMPLE and -----BEGIN RSA PRIVATE KEY", "AKIA short", "-----BEGIN EC PRIVATE KEY"]
    outputs, _ = pmsm.Engine(s).run(texts)
    assert [o.rules for o in outputs] == [["aws", "pem"], [], ["pem"]]
    # The same rules from a mapping, full-match semantics.
    whole = pmsm.machine_set({"digits": "[0-9]+", "word": "[a-z]+"}, reveal="count", full_match=True)
    outputs, _ = pmsm.Engine(whole).run(["123", "abc", "abc1", ""])
    assert [o.matched for o in outputs] == [1, 1, 0, 0]
    # Every grouping answers the same.
    for grouping in ("alone", "fill"):
        g = pmsm.machine_set(rules, grouping=grouping)
        assert [o.rules for o in pmsm.Engine(g).run(texts).outputs] == [["aws", "pem"], [], ["pem"]]
    assert len(pmsm.machine_set(rules, grouping="alone").info()["groups"]) == 2
    assert len(pmsm.machine_set(rules, grouping="fill").info()["groups"]) == 1


def test_set_error_paths(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('title = "x"\n\n[[rules]\nid = "a"\n')
    with pytest.raises(pmsm.DfaError, match=r"bad.toml: line 3: "):
        pmsm.gitleaks(bad)
    bad.write_text('[[rules]]\nid = "a"\nregex = 3\n')
    with pytest.raises(pmsm.DfaError, match=r"field `rules\[0\].regex \(a\)`: is not a string"):
        pmsm.gitleaks(bad)
    bad.write_text('[[rules]]\nregex = "x"\n')
    with pytest.raises(pmsm.DfaError, match=r"field `rules\[0\]`: has no id"):
        pmsm.gitleaks(bad)
    bad.write_text('title = "no rules"\n')
    with pytest.raises(pmsm.DfaError, match=r"no \[\[rules\]\]"):
        pmsm.gitleaks(bad)
    bad.write_text('[[rules]]\nid = "look"\nregex = \'\'\'a(?=b)\'\'\'\n')
    with pytest.raises(pmsm.DfaError, match=r"(?s)no rule compiles \(rule look: .*a\(\?=b\).*look-around"):
        pmsm.gitleaks(bad)
    with pytest.raises(pmsm.DfaError, match="missing.toml"):
        pmsm.gitleaks(tmp_path / "missing.toml")
    with pytest.raises(pmsm.ParameterError, match="unknown set policy"):
        pmsm.machine_set([("a", "a")], reveal="accept")
    with pytest.raises(pmsm.ParameterError, match="unknown grouping"):
        pmsm.machine_set([("a", "a")], grouping="best")
    with pytest.raises(pmsm.DfaError, match="given twice"):
        pmsm.machine_set([("a", "a"), ("a", "b")])
    with pytest.raises(pmsm.DfaError, match="at least one"):
        pmsm.machine_set([])
    s = pmsm.machine_set([("a", "a")])
    with pytest.raises(pmsm.ParameterError, match="unknown set policy"):
        pmsm.Engine(s, reveal="state")
    with pytest.raises(pmsm.InputError, match="Dfa or a MachineSet"):
        pmsm.Engine("a*")  # type: ignore[call-overload]


@pytest.mark.parametrize("reveal", ["rules", "count", "any"])
@pytest.mark.parametrize("protocol", ["lookup-xor", "lookup-ring"])
def test_a_served_set_releases_its_policy_like_the_plaintext_set(reveal: str, protocol: str) -> None:
    rules = {"key": r"key=[0-9]{3}", "word": r"secret", "end": r"z$"}
    rule_set = pmsm.machine_set(rules, reveal=reveal, grouping="alone")
    rng = random.Random(7)
    with pmsm.Service({"leaks": (rule_set, protocol)}, max_wave=4, window=3) as service:
        client = service.connect("leaks")
        sessions = [(client.open(), bytearray()) for _ in range(6)]
        for _ in range(60):
            s, text = sessions[rng.randrange(len(sessions))]
            part = bytes(rng.choice(b"key=0123 secretz") for _ in range(rng.randrange(1, 9)))
            client.push(s, part)
            text.extend(part)
            want = rule_set.matches(bytes(text))
            got = client.release_set(s)
            assert got.any == bool(want) and got.symbols == len(text)
            assert client.release(s).accept == bool(want)
            if reveal == "rules":
                assert got.rules == want and got.matched is None
            elif reveal == "count":
                assert got.matched == len(want) and got.rules is None
            else:
                assert got.rules is None and got.matched is None
        for s, _ in sessions:
            client.close(s)


def test_release_set_on_a_machine_that_is_not_a_set_is_refused() -> None:
    ab = pmsm.random_dfa(4, 2, seed=1)
    with pmsm.Service({"ab": ab}) as service:
        client = service.connect("ab")
        s = client.open()
        with pytest.raises(pmsm.ParameterError, match="not a rule set"):
            client.release_set(s)
        client.close(s)

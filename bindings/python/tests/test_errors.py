"""Every error path raises its class, with the message the CLI prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import pmsm
from conftest import DATASETS

AB = (DATASETS / "ab.json").read_text()


def test_the_hierarchy() -> None:
    for cls in [pmsm.DfaError, pmsm.UnknownSymbolError, pmsm.InputError, pmsm.ProtocolError,
                pmsm.ParameterError, pmsm.ServiceError, pmsm.UnknownMachineError,
                pmsm.SessionClosedError, pmsm.ServiceStoppedError]:
        assert issubclass(cls, pmsm.Error)
    assert issubclass(pmsm.DfaError, ValueError) and issubclass(pmsm.ParameterError, ValueError)
    assert issubclass(pmsm.InputError, TypeError)
    assert pmsm.EngineError is pmsm.ProtocolError
    assert issubclass(pmsm.UnknownSymbolError, pmsm.DfaError)
    assert issubclass(pmsm.SessionClosedError, pmsm.ServiceError)


def test_malformed_json_names_line_and_column() -> None:
    with pytest.raises(pmsm.DfaError, match=r"^<string>: line 2, column \d+: "):
        pmsm.Dfa.from_json('{"states": 2,\n "alphabet": ["a"] "start": 0}')


def test_a_bad_field_names_its_path(tmp_path: Path) -> None:
    table = json.loads(AB)
    table["delta"][2][1] = 9
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(table))
    with pytest.raises(pmsm.DfaError) as e:
        pmsm.Dfa.from_json(f)
    assert str(e.value) == f"{f}: field `delta[2][1]`: state 9 is out of range (0..4)"
    table = json.loads(AB)
    table["surprise"] = 1
    with pytest.raises(pmsm.DfaError, match="unknown field `surprise`"):
        pmsm.Dfa.from_json(json.dumps(table))


def test_a_missing_file_is_a_dfa_error(tmp_path: Path) -> None:
    with pytest.raises(pmsm.DfaError, match=r"nope\.json: No such file"):
        pmsm.Dfa.from_json(tmp_path / "nope.json")


def test_unknown_symbols_name_input_and_position(ab: pmsm.Dfa) -> None:
    engine = pmsm.Engine(ab)
    with pytest.raises(pmsm.UnknownSymbolError) as e:
        engine.run(["ab", "abca"])
    assert str(e.value) == "input 1: symbol \"c\" at position 2 is not in the machine's alphabet"
    with pytest.raises(pmsm.UnknownSymbolError, match=r"^input 0: symbol \"2\" at position 1 "):
        engine.run([[0, 2]])
    with pytest.raises(pmsm.UnknownSymbolError, match=r"^input 2: symbol \"-1\" at position 0 "):
        engine.run(["a", "b", [-1]])
    with pytest.raises(pmsm.UnknownSymbolError):
        ab.eval([5])


def test_inputs_of_the_wrong_kind(ab: pmsm.Dfa) -> None:
    engine = pmsm.Engine(ab)
    with pytest.raises(pmsm.InputError, match="input 0: item at position 1 is a str"):
        engine.run([[0, "b"]])  # type: ignore[list-item]
    with pytest.raises(pmsm.InputError, match="got float"):
        engine.run([1.5])  # type: ignore[list-item]
    with pytest.raises(pmsm.InputError, match=r"wrap it in a list"):
        engine.run("ab")
    with pytest.raises(TypeError):
        engine.run(7)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"protocol": "lookup-or"}, 'unknown protocol "lookup-or" (expected lookup-xor, lookup-ring, seed-dpf or naive)'),
        ({"reveal": "everything"}, 'unknown output policy "everything" (expected state or accept)'),
        ({"classes": "some"}, 'unknown symbol-class mode "some" (expected auto, on or off)'),
        ({"chunk": 0}, "invalid parameter: chunk, threads and dealer depth must be positive"),
    ],
)
def test_bad_settings_are_parameter_errors(ab: pmsm.Dfa, kwargs: Any, message: str) -> None:
    with pytest.raises(pmsm.ParameterError) as e:
        pmsm.Engine(ab, **kwargs)
    assert str(e.value) == message


def test_a_machine_too_large_for_the_protocol() -> None:
    big = pmsm.random_dfa(1100, 256)
    with pytest.raises(pmsm.ParameterError, match=r"^invalid parameter: naive supports \|S\|·\|Σ\| up to 262144 .* 1100 × 256$"):
        pmsm.Engine(big, protocol="naive")
    with pytest.raises(pmsm.ParameterError):
        big.polynomials()


def test_regex_errors(tmp_path: Path) -> None:
    with pytest.raises(pmsm.DfaError, match=r'^regex 1 \("a\(b"\): '):
        pmsm.compile(["ok", "a(b"])
    rules = tmp_path / "rules.txt"
    rules.write_text("# comment\nfine\n[unclosed\n")
    with pytest.raises(pmsm.DfaError, match=rf"^{rules}: line 3: regex 1 "):
        pmsm.compile_file(rules)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(pmsm.DfaError, match=r"holds no pattern"):
        pmsm.compile_file(empty)
    with pytest.raises(pmsm.DfaError, match=r"more than 3 DFA states"):
        pmsm.compile("abcdef", max_states=3)
    with pytest.raises(pmsm.DfaError, match=r"no pattern"):
        pmsm.compile([])


def test_service_errors(ab: pmsm.Dfa) -> None:
    with pytest.raises(pmsm.ParameterError, match="the service runs lookup protocols; naive is not one"):
        pmsm.Service({"ab": ab}, protocol="naive")
    with pytest.raises(pmsm.InputError, match="machine 'ab'"):
        pmsm.Service({"ab": "ab.json"})  # type: ignore[dict-item]
    with pmsm.Service({"ab": ab, "other": ab}, max_sessions_per_client=1, max_pending=4) as service:
        with pytest.raises(pmsm.UnknownMachineError) as e:
            service.connect("abc")
        assert str(e.value) == 'no machine named "abc" is served here (served: ab, other)'
        client = service.connect("ab")
        s = client.open()
        with pytest.raises(pmsm.ServiceError, match="^refused: "):
            client.open()
        with pytest.raises(pmsm.UnknownSymbolError, match="symbol \"c\" at position 1"):
            client.push(s, "ac")
        with pytest.raises(pmsm.ServiceError, match="^refused: .* at most 4"):
            client.push(s, "aaaaaaa")
        client.close(s)
        with pytest.raises(pmsm.SessionClosedError, match=f"session {s.id} is closed"):
            client.push(s, "a")
        with pytest.raises(pmsm.SessionClosedError):
            client.release(s)
        with pytest.raises(pmsm.SessionClosedError):
            client.close(s)
        # Another client's session is refused by the servers.
        other = service.connect("ab")
        mine = other.open()
        with pytest.raises(pmsm.ServiceError, match="belongs to another client"):
            client.release(mine)
    with pytest.raises(pmsm.ServiceStoppedError, match="the service stopped"):
        other.release(mine)
    with pytest.raises(pmsm.ServiceStoppedError):
        service.connect("ab")

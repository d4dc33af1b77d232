"""Malformed and hostile flow files: every one ends in exit 2 with one line per problem.

The contract (issue 9, item 4): ``routilux validate`` (and ``run``) never answer a bad
file with a traceback, exit 1, a crash or a stall; each problem is one line
``file: key.path: message``. Fixed cases first, then a property test that generates
flow documents and checks the same contract.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routilux_kernel.cli import main

ROUTILUX = [sys.executable, "-m", "routilux_kernel.cli"]


def validate(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, list[str]]:
    """``routilux validate`` in-process: the exit code and the problem lines (summary dropped)."""
    code = main(["validate", str(path), *extra])
    err = capsys.readouterr().err.splitlines()
    if code == 2:
        assert err, "exit 2 without a word"
        assert re.fullmatch(r"routilux validate: .* is invalid: \d+ problems?", err[-1]), err[-1]
        assert int(err[-1].split(": ")[-1].split()[0]) == len(err) - 1
        return code, err[:-1]
    return code, err


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def only_problem(lines: list[str], path: Path) -> str:
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: ")
    return lines[0].removeprefix(f"{path}: ")


# -- parsing: depth, integers, aliases -------------------------------------------------


@pytest.mark.parametrize("levels", [5_000, 100_000])
def test_deeply_nested_json_is_one_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], levels: int
) -> None:
    path = write(tmp_path, "deep.json", '{"params": ' + "[" * levels + "]" * levels + "}")
    code, lines = validate(path, capsys)
    assert code == 2
    assert only_problem(lines, path) == (
        "line 1, column 111: nested more than 100 levels deep; a flow file may nest "
        "mappings and lists at most 100 levels"
    )


@pytest.mark.parametrize("levels", [5_000, 100_000])
def test_deeply_nested_yaml_is_one_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], levels: int
) -> None:
    path = write(tmp_path, "deep.yaml", "params: " + "[" * levels + "]" * levels + "\n")
    code, lines = validate(path, capsys)
    assert code == 2
    assert "nested more than 100 levels deep" in only_problem(lines, path)


def test_block_style_yaml_nesting_is_bounded_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "".join(f"{' ' * level}k{level}:\n" for level in range(150)) + " " * 150 + "k: 1\n"
    path = write(tmp_path, "deep.yaml", text)
    code, lines = validate(path, capsys)
    assert code == 2
    assert "nested more than 100 levels deep" in only_problem(lines, path)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_an_integer_over_the_digit_limit_is_named_by_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    digits = "9" * 5000
    text = (
        f'{{"routines": {{"a": {{"use": "std.map", "config": {{"n": {digits}}}}}}}}}'
        if suffix == ".json"
        else f"routines:\n  a:\n    use: std.map\n    config: {{n: {digits}}}\n"
    )
    path = write(tmp_path, "big" + suffix, text)
    code, lines = validate(path, capsys)
    assert code == 2
    assert only_problem(lines, path) == (
        "routines.a.config.n: integer of 5000 digits; at most 4300 digits are read "
        "(write a string if it is an id)"
    )


ALIAS_BOMB = textwrap.dedent(
    """\
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    routines: {x: {use: std.map, config: {v: *h}}}
    """
)


@pytest.mark.parametrize("extra", [(), ("--registered-only",)])
def test_a_yaml_alias_bomb_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...]
) -> None:
    path = write(tmp_path, "bomb.yaml", ALIAS_BOMB)
    started = time.monotonic()
    code, lines = validate(path, capsys, *extra)
    assert time.monotonic() - started < 5  # expanded, it takes minutes and gigabytes
    assert code == 2
    assert only_problem(lines, path) == (
        "line 6, column 4: aliases expand this document to more than 100021 values (at "
        "most 100000 may come from aliases); write the values out, or use fewer aliases"
    )


def test_aliases_within_the_bound_still_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = textwrap.dedent(
        """\
        routines:
          a: {use: std.map, config: &shared {fields: {value: "@"}}, error_handler: &retry retry}
          b: {use: std.map, config: *shared, error_handler: *retry}
        connections: ["a.out -> b.in"]
        entry: a
        """
    )
    code, lines = validate(write(tmp_path, "ok.yaml", text), capsys)
    assert (code, lines) == (0, [])


def test_a_recursive_alias_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "loop.yaml", "params: &p {self: *p}\nroutines: {a: std.split}\n")
    code, lines = validate(path, capsys)
    assert code == 2
    assert "an alias refers to a mapping or list that contains it" in only_problem(lines, path)


# -- keys and values in messages ----------------------------------------------------------


def test_control_characters_in_keys_are_escaped_and_an_empty_key_is_quoted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = {"routines": {"a\nb": {"use": "nope"}, "": {"use": "std.split"}, "c\x1b[2J": 1}}
    path = write(tmp_path, "keys.json", json.dumps(data))
    code, lines = validate(path, capsys)
    assert code == 2
    assert [line.split(": ")[1] for line in lines] == [
        "routines.'a\\nb'.use",
        "routines.''",
        "routines.'c\\x1b[2J'",
    ]


def test_a_key_with_a_colon_is_quoted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # found by the property test: a bare ":" made the key path end early
    path = write(tmp_path, "flow.json", '{":": null}')
    code, lines = validate(path, capsys)
    assert code == 2
    assert lines[0] == f"{path}: ':': unknown key; expected one of: flow_id, routines, " + (
        "connections, executor, error_handler, entry, params"
    )
    assert all(line.isprintable() for line in lines)


def test_huge_values_are_shortened_before_they_are_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = {
        "routines": {"a": {"use": "std.split", "config": ["x" * 200_000] * 5}},
        "entry": "a",
    }
    path = write(tmp_path, "huge.json", json.dumps(data))
    code, lines = validate(path, capsys)
    assert code == 2
    problem = only_problem(lines, path)
    assert problem.startswith("routines.a.config: expected a mapping of config keys to values")
    assert len(problem) < 200


# -- use: must name a Routine subclass; user code cannot end the process ---------------


@pytest.mark.parametrize(
    ("use", "what"),
    [
        ("sys:exit", "a builtin_function_or_method"),
        ("os:abort", "a builtin_function_or_method"),
        ("builtins:input", "a builtin_function_or_method"),
        ("builtins:dict", "the class 'dict'"),
        ("json:loads", "a function"),
    ],
)
def test_use_must_name_a_routine_subclass_and_nothing_else_is_called(
    tmp_path: Path, use: str, what: str
) -> None:
    # A subprocess: before the fix, os:abort killed the interpreter and input() blocked.
    path = write(tmp_path, "flow.yaml", f"routines:\n  a: {{use: '{use}'}}\n")
    for command in ("validate", "run"):
        done = subprocess.run(
            [*ROUTILUX, command, str(path)],
            stdin=subprocess.PIPE,  # left open: input() would wait on it
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done
        assert done.stdout == ""
        assert done.stderr.splitlines()[0] == (
            f"{path}: routines.a.use: '{use}' is {what}, expected a Routine subclass"
        )


def test_base_exceptions_from_user_code_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "exits_on_import.py", "raise SystemExit(0)\n")
    write(
        tmp_path,
        "exits_in_init.py",
        "from routilux_kernel import Routine\n"
        "class Quitter(Routine):\n"
        "    def __init__(self):\n"
        "        raise SystemExit('bye')\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    text = (
        "routines:\n"
        "  a: {use: 'exits_on_import:Anything'}\n"
        "  b: {use: 'exits_in_init:Quitter'}\n"
        "  c: {use: std.split, error_handler: {strategy: retry,"
        " retryable_exceptions: ['exits_on_import:Error']}}\n"
    )
    path = write(tmp_path, "flow.yaml", text)
    code, lines = validate(path, capsys)
    assert code == 2
    assert lines == [
        f"{path}: routines.a.use: importing module 'exits_on_import' raised SystemExit: 0",
        f"{path}: routines.b.use: creating 'exits_in_init:Quitter' failed: SystemExit: bye",
        f"{path}: routines.c.error_handler.retryable_exceptions[0]: importing module "
        "'exits_on_import' raised SystemExit: 0",
    ]


def test_a_custom_policy_fn_must_be_a_function(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "routines:\n  a: {use: std.split, activation_policy: {name: custom, fn: 'os:abort'}}\n"
        "entry: a\n"
    )
    path = write(tmp_path, "flow.yaml", text)
    code, lines = validate(path, capsys)
    assert code == 2
    assert only_problem(lines, path).startswith(
        "routines.a.activation_policy.fn: builtin_function_or_method <built-in function abort>"
        " is not a function"
    )


# -- numbers that must be finite and sane ---------------------------------------------


@pytest.mark.parametrize(
    ("handler", "problem"),
    [
        (
            "{strategy: retry, retry_delay: .inf}",
            "error_handler.retry_delay: expected a number of seconds from 0 to 86400, "
            "got float inf",
        ),
        (
            "{strategy: retry, retry_delay: .nan}",
            "error_handler.retry_delay: expected a number of seconds from 0 to 86400, "
            "got float nan",
        ),
        (
            "{strategy: retry, retry_backoff: 1.0e+308}",
            "error_handler.retry_backoff: expected a number from 0 to 1000, got float 1e+308",
        ),
        (
            "{strategy: retry, max_retries: 100000}",
            "error_handler.max_retries: expected an integer from 0 to 1000, got int 100000",
        ),
        (
            "{strategy: retry, max_retries: 50, retry_delay: 1, retry_backoff: 2}",
            "error_handler: the last retry would wait retry_delay * retry_backoff ** "
            "(max_retries - 1) = 1 * 2 ** 49, more than 86400 seconds (one day); lower one of them",
        ),
    ],
)
def test_retry_numbers_must_be_finite_and_bounded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], handler: str, problem: str
) -> None:
    path = write(
        tmp_path, "flow.yaml", f"error_handler: {handler}\nroutines: {{a: std.split}}\nentry: a\n"
    )
    code, lines = validate(path, capsys)
    assert code == 2
    assert only_problem(lines, path) == problem


def test_a_policy_interval_must_be_finite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "routines:\n"
        "  a: {use: std.split, activation_policy: {name: time_interval, seconds: .inf}}\n"
        "  b: {use: std.split, activation_policy: {name: time_interval, seconds: 1.0e+9}}\n"
        "entry: [a, b]\n"
    )
    path = write(tmp_path, "flow.yaml", text)
    code, lines = validate(path, capsys)
    assert code == 2
    assert [line.removeprefix(f"{path}: ") for line in lines] == [
        "routines.a.activation_policy.seconds: expected a finite number, got float inf",
        "routines.b.activation_policy.seconds: expected at most 86400 seconds (one day), got "
        "float 1000000000.0",
    ]


def test_sane_retry_numbers_still_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (
        "error_handler: {strategy: retry, max_retries: 10, retry_delay: 0.5, retry_backoff: 2}\n"
        "routines: {a: std.split}\nentry: a\n"
    )
    code, lines = validate(write(tmp_path, "flow.yaml", text), capsys)
    assert (code, lines) == (0, [])


# -- the property: any document gets exit 0 or exit 2 with one line per problem ---------

_NAMES = [
    "std.map",
    "std.join",
    "nope",
    "sys:exit",
    "os:abort",
    "builtins:input",
    "builtins:dict",
    ":",
    "a:",
    "no_such_module:X",
]
_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12
) | st.sampled_from(["", "a", "a\nb", "x.y", "->", "\x00", "\u2028", "trigger"] + _NAMES)
_BIG_INTEGER = "@@big-integer@@"
_DEEP = "@@deep@@"
_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    _TEXT,
    st.just(_BIG_INTEGER),
    st.just(_DEEP),
)
_VALUE = st.recursive(
    _LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
_HANDLER = st.one_of(
    _VALUE,
    st.fixed_dictionaries(
        {"strategy": st.sampled_from(["retry", "stop", "explode"])},
        optional={
            "max_retries": _LEAF,
            "retry_delay": _LEAF,
            "retry_backoff": _LEAF,
            "retryable_exceptions": _VALUE,
        },
    ),
)
_ROUTINE = st.one_of(
    st.sampled_from(_NAMES),
    _VALUE,
    st.fixed_dictionaries(
        {"use": st.sampled_from(_NAMES) | _LEAF},
        optional={
            "config": _VALUE,
            "error_handler": _HANDLER,
            "activation_policy": _VALUE
            | st.fixed_dictionaries(
                {"name": st.sampled_from(["time_interval", "batch_size", "custom"])},
                optional={"seconds": _LEAF, "size": _LEAF, "fn": st.sampled_from(_NAMES)},
            ),
            "executor": _VALUE | st.sampled_from(["thread", "process", "warp"]),
        },
    ),
)
_DOCUMENT = st.one_of(
    _VALUE,
    st.fixed_dictionaries(
        {},
        optional={
            "flow_id": _LEAF,
            "routines": _VALUE | st.dictionaries(_TEXT, _ROUTINE, max_size=3),
            "connections": _VALUE
            | st.lists(st.sampled_from(["a.output -> b.input", "a.x -> nowhere.y", "junk"])),
            "executor": _VALUE,
            "error_handler": _HANDLER,
            "entry": _VALUE,
            "params": _VALUE,
        },
    ),
    st.builds(
        lambda known, extra: {**extra, **known},
        st.fixed_dictionaries({"routines": _VALUE}),
        st.dictionaries(_TEXT, _VALUE, max_size=2),
    ),
)


def _document_text(document: Any) -> str:
    text = json.dumps(document, allow_nan=True)
    text = text.replace(json.dumps(_BIG_INTEGER), "7" * 4400)
    return text.replace(json.dumps(_DEEP), "[" * 3000 + "]" * 3000)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=_DOCUMENT, suffix=st.sampled_from([".json", ".yaml"]))
def test_any_flow_document_is_valid_or_gets_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], document: Any, suffix: str
) -> None:
    path = tmp_path / f"generated{suffix}"
    path.write_text(_document_text(document), encoding="utf-8")
    capsys.readouterr()
    code = main(["validate", str(path)])
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    if code == 0:
        assert captured.out.startswith(f"{path}: valid: ")
        return
    assert code == 2, captured
    assert captured.out == ""
    *problems, summary = lines
    assert summary == (
        f"routilux validate: {path} is invalid: {len(problems)} "
        f"problem{'s' if len(problems) != 1 else ''}"
    )
    for problem in problems:
        assert problem.isprintable(), problem
        where, separator, message = problem.removeprefix(f"{path}: ").partition(": ")
        assert where and separator and message, problem
        assert len(problem) < 2000, problem
        assert "Traceback" not in problem


def test_validate_reports_executor_options_with_the_other_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "executor: {name: thread, options: {max_workers: 0}}\n"
        "routines:\n  a: {use: std.split, activation_policy: {name: batch_size, sise: 2}}\n"
        "entry: a\n"
    )
    path = write(tmp_path, "flow.yaml", text)
    code, lines = validate(path, capsys)
    assert code == 2
    assert [line.removeprefix(f"{path}: ").split(":")[0] for line in lines] == [
        "routines.a.activation_policy.sise",
        "executor.options",
    ]
    assert "max_workers must be an int >= 1, got 0" in lines[1]

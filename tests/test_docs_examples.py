"""Every complete program in the user docs runs and prints what the docs say it prints.

Convention (stated at the top of docs/quickstart.md and docs/concepts.md): a ```python block
whose first line is an ``import``/``from`` line is a complete program; a ```text block that
directly follows it (only blank lines between) is its expected output. Other ```python
blocks are fragments and are not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ("docs/quickstart.md", "docs/concepts.md")
#: Pages with a few programs of their own (not held to the five-program minimum).
OTHER_PAGES = ("README.md", "docs/migrating-from-routilux.md", "docs/tutorial.md")
#: The tutorial page shows the programs of examples/tutorial/, in order, word for word.
TUTORIAL_PAGE, TUTORIAL_PROGRAMS = "docs/tutorial.md", ROOT / "examples" / "tutorial"

_FENCE = re.compile(r"^```(\w*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
# Times and durations differ from run to run; ids are random.
_FLOAT = re.compile(r"\d+\.\d+")
_HEX_ID = re.compile(r"\b[0-9a-f]{12}-\d+\b")  # job ids: per-process prefix + counter


class Program:
    def __init__(self, document: str, line: int, source: str, expected: str | None) -> None:
        self.document = document
        self.line = line
        self.source = source
        self.expected = expected

    @property
    def name(self) -> str:
        return f"{self.document}:{self.line}"


def extract_programs(document: str) -> list[Program]:
    text = (ROOT / document).read_text(encoding="utf-8")
    blocks = [
        (match.group(1), match.group(2), match.start(), match.end())
        for match in _FENCE.finditer(text)
    ]
    programs = []
    for index, (language, body, start, end) in enumerate(blocks):
        if language != "python" or not body.startswith(("import ", "from ")):
            continue
        expected = None
        if index + 1 < len(blocks):
            next_language, next_body, next_start, _ = blocks[index + 1]
            if next_language == "text" and not text[end:next_start].strip():
                expected = next_body
        programs.append(Program(document, text.count("\n", 0, start) + 1, body, expected))
    return programs


def normalise(output: str) -> list[str]:
    lines = [_HEX_ID.sub("<id>", _FLOAT.sub("<n>", line)).rstrip() for line in output.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _clean_environment() -> dict[str, str]:
    # The docs describe the defaults; an executor or plugin switch set by the caller's shell
    # would change what the programs print.
    return {key: value for key, value in os.environ.items() if not key.startswith("ROUTILUX_")}


PROGRAMS = [
    program for document in (*DOCUMENTS, *OTHER_PAGES) for program in extract_programs(document)
]


def test_every_document_has_programs() -> None:
    # Guards the convention itself: a renamed fence or a changed first line would silently
    # leave the docs untested.
    for document in DOCUMENTS:
        assert len(extract_programs(document)) >= 5, f"{document}: too few programs found"


def test_the_tutorial_page_shows_the_five_example_programs() -> None:
    # tests/examples/ checks what each example program does under load and on every
    # executor; this keeps the page's copies the same programs
    shown = [program.source for program in extract_programs(TUTORIAL_PAGE)]
    files = sorted(TUTORIAL_PROGRAMS.glob("step*.py"))
    assert [path.name for path in files] == [f"step{n}.py" for n in range(1, 6)]
    assert shown == [path.read_text(encoding="utf-8") for path in files]
    checked = [p for p in extract_programs(TUTORIAL_PAGE) if p.expected is not None]
    assert len(checked) >= 1  # step 1's output is deterministic and is compared line by line


@pytest.mark.parametrize("program", PROGRAMS, ids=[program.name for program in PROGRAMS])
def test_program_runs_and_prints_what_the_docs_show(program: Program, tmp_path: Path) -> None:
    script = tmp_path / "program.py"
    script.write_text(program.source, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=tmp_path,
        env=_clean_environment(),
    )
    assert result.returncode == 0, (
        f"{program.name} exited with {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    if program.expected is not None:
        assert normalise(result.stdout) == normalise(program.expected), (
            f"{program.name} printed something else than its ```text block\n"
            f"stderr:\n{result.stderr}"
        )

"""JMESPath, the only expression language of std routines, plus ``{name}`` templates.

Nothing here evaluates Python: expressions are parsed by jmespath, templates only look up
dotted names. A few text functions are added to JMESPath for the jobs its standard set
cannot do (splitting text into words, counting values).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import jmespath
from jmespath import functions
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from routilux_std.errors import StdConfigError

_WORD = re.compile(r"[\w']+")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)\}")


class _TextFunctions(functions.Functions):
    """Functions std adds to JMESPath: lower, upper, split, words, count_values, to_int."""

    @functions.signature({"types": ["string"]})
    def _func_lower(self, text: str) -> str:
        return text.lower()

    @functions.signature({"types": ["string"]})
    def _func_upper(self, text: str) -> str:
        return text.upper()

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_split(self, text: str, separator: str) -> list[str]:
        return text.split(separator)

    @functions.signature({"types": ["string", "array"]})
    def _func_words(self, text: str | list[str]) -> list[str]:
        joined = text if isinstance(text, str) else " ".join(str(part) for part in text)
        return _WORD.findall(joined.lower())

    @functions.signature({"types": ["array"]})
    def _func_count_values(self, values: list[Any]) -> dict[str, int]:
        return dict(Counter(str(value) for value in values))

    @functions.signature({"types": ["string", "number"]})
    def _func_to_int(self, value: str | float) -> int | None:
        try:
            return int(value)
        except ValueError:
            return None


OPTIONS = jmespath.Options(custom_functions=_TextFunctions())


def compile_expression(expression: Any, who: str, key: str) -> ParsedResult:
    """Parse a JMESPath expression, or raise StdConfigError naming routine and key."""
    if not isinstance(expression, str) or not expression.strip():
        raise StdConfigError(
            f"{who}: config key {key!r} expected a JMESPath expression (a non-empty string), "
            f"got {expression!r}"
        )
    try:
        return jmespath.compile(expression)
    except JMESPathError as exc:
        detail = str(exc).replace("\n", " ")
        raise StdConfigError(
            f"{who}: config key {key!r} is not a valid JMESPath expression {expression!r}: {detail}"
        ) from None


def evaluate(expression: ParsedResult, data: Any, who: str, key: str) -> Any:
    """Apply a compiled expression; a type error in it names routine and key."""
    try:
        return expression.search(data, options=OPTIONS)
    except JMESPathError as exc:
        raise StdConfigError(
            f"{who}: config key {key!r}: JMESPath {expression.expression!r} failed on "
            f"{str(data)[:200]}: {exc}"
        ) from None


def check_template(template: str, who: str, key: str) -> str:
    """Reject a template whose braces are not all ``{dotted.name}`` placeholders."""
    stripped = _PLACEHOLDER.sub("", template)
    if "{" in stripped or "}" in stripped:
        raise StdConfigError(
            f"{who}: config key {key!r}: template {template!r} has a brace that is not a "
            "{name} or {dotted.name} placeholder"
        )
    return template


def fill_template(template: str, values: dict[str, Any], who: str, key: str) -> str:
    """Replace each ``{a.b}`` with ``values['a']['b']``; a missing name is an error."""

    def lookup(match: re.Match[str]) -> str:
        current: Any = values
        for part in match.group(1).split("."):
            if not isinstance(current, dict) or part not in current:
                available = ", ".join(sorted(values)) or "none"
                raise StdConfigError(
                    f"{who}: config key {key!r}: template {template!r} needs "
                    f"{match.group(1)!r}, which the data does not have; it has: {available}"
                )
            current = current[part]
        return str(current)

    return _PLACEHOLDER.sub(lookup, template)

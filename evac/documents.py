"""Loading YAML documents into pydantic models, with every error located.

A bad plan or topology is refused with *all* its errors at once, each naming the file,
the path inside the document (``steps[3].region``), the line when known, and what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TypeVar

import pydantic
import yaml
from pydantic_core import PydanticCustomError

Loc = Sequence[str | int]
Problem = tuple[tuple[str | int, ...], str]
M = TypeVar("M", bound=pydantic.BaseModel)

_DICT_KEY = "[key]"  # pydantic's marker for an error in a dictionary's key rather than its value


def format_path(loc: Loc) -> str:
    """``("steps", 3, "region")`` -> ``steps[3].region``; an error in a dictionary key is at the key."""
    out = ""
    for part in loc:
        if part == _DICT_KEY:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


@dataclass(frozen=True)
class DocumentError:
    """One thing wrong with one place in one file."""

    file: str
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}"


class InvalidDocument(Exception):
    """A document (plan, topology) that cannot be used; carries every error found, in line order."""

    def __init__(self, errors: list[DocumentError]):
        self.errors = sorted(errors, key=lambda e: e.line or 0)
        super().__init__("\n".join(str(e) for e in self.errors))


def rule_violations(model: str, problems: list[Problem]) -> pydantic.ValidationError:
    """Problems a model's rule found, each at the field it concerns (``("timeout",)``).

    Raised from a validator, pydantic reports them like any field error, under the model's path.
    """
    return pydantic.ValidationError.from_exception_data(
        model,
        [
            {"type": PydanticCustomError("rule", "{message}", {"message": message}), "loc": loc, "input": None}
            for loc, message in problems
        ],
    )


class _Locator:
    """Maps a path inside a YAML document to the line it was written on."""

    def __init__(self, node: yaml.Node | None):
        self._root = node

    def line(self, loc: Loc) -> int | None:
        node = self._root
        best = node.start_mark.line + 1 if node is not None else None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                nxt = None
                for key, value in node.value:
                    if key.value == part:
                        # An unknown key is best reported on the key's own line.
                        nxt = value
                        best = key.start_mark.line + 1
                        break
                node = nxt
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                node = node.value[part] if 0 <= part < len(node.value) else None
                if node is not None:
                    best = node.start_mark.line + 1
            else:
                node = None
            if node is None:
                break
        return best


@dataclass
class RawDocument:
    file: str
    data: Any
    locator: _Locator
    written_as: dict[tuple[str | int, ...], tuple[str | int, ...]] = field(default_factory=dict)
    """Where the document wrote what the model holds elsewhere: ``{("services", 0): ("service",)}``."""

    def error(self, loc: Loc, message: str) -> DocumentError:
        loc = tuple(loc)
        for held, written in self.written_as.items():
            if loc[: len(held)] == held:
                loc = written + loc[len(held) :]
        return DocumentError(self.file, format_path(loc), message, self.locator.line(loc))


_TEXT = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"


def _key_problems(node: yaml.Node, loc: tuple[str | int, ...], seen: set[int]) -> list[tuple[Loc, str, int]]:
    """Keys that are repeated in one mapping, or are not text, anywhere under ``node``: (path, message, line)."""
    if id(node) in seen:  # an alias of a node already checked
        return []
    seen.add(id(node))
    found: list[tuple[Loc, str, int]] = []
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found += _key_problems(item, (*loc, i), seen)
    elif isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.tag == _MERGE:
                continue
            if not isinstance(key, yaml.ScalarNode):
                found.append((loc, "invalid key: a key must be text, not a list or mapping", line))
                continue
            if key.tag != _TEXT:  # 1, yes, ~, 2024-01-01 ...
                message = f"invalid key: a key must be text (write it quoted: '{key.value}')"
                found.append(((*loc, key.value), message, line))
                continue
            if key.value in first_line:
                found.append(
                    ((*loc, key.value), f"duplicate key (first given on line {first_line[key.value]})", line)
                )
            else:
                first_line[key.value] = line
            found += _key_problems(value, (*loc, key.value), seen)
    return found


def _yaml_message(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None:
        return f"not valid YAML: {problem} ({context} that began on line {context_mark.line + 1})"
    return f"not valid YAML: {problem}"


def read_yaml(path: str | Path) -> RawDocument:
    """Read one YAML mapping; an unreadable or unparsable file, a repeated key or a key that is not
    text is an InvalidDocument."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidDocument([DocumentError(name, "(document)", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidDocument([DocumentError(name, "(document)", f"cannot read file: {exc}")]) from None
    loader = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is None:
            raise InvalidDocument([DocumentError(name, "(document)", "the file is empty")])
        problems = _key_problems(node, (), set())
        if problems:
            raise InvalidDocument([DocumentError(name, format_path(loc), msg, line) for loc, msg, line in problems])
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
            line = text.count("\n", 0, exc.position) + 1
        raise InvalidDocument([DocumentError(name, "(document)", _yaml_message(exc), line)]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        raise InvalidDocument(
            [
                DocumentError(
                    name,
                    "(document)",
                    "expected a mapping of keys to values at the top level",
                    node.start_mark.line + 1,
                )
            ]
        )
    return RawDocument(name, data, _Locator(node))


def _located(err: Any, union_tags: frozenset[str]) -> tuple[list[str | int], str]:
    """A pydantic error's place in the document, and what to tell the user."""
    loc = _clean_loc(err["loc"], union_tags)
    kind = err["type"]
    if kind == "extra_forbidden":
        return loc, "unknown key"
    if kind == "missing":
        return loc, "required key is missing"
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        # The step's kind is what is missing or wrong: point at it.
        discriminator = err["ctx"]["discriminator"].strip("'")
        if kind == "union_tag_not_found":
            return [*loc, discriminator], "required key is missing"
        ctx = err["ctx"]
        return [*loc, discriminator], f"unknown {discriminator} '{ctx['tag']}' (known: {ctx['expected_tags']})"
    if kind in ("int_type", "float_type") and isinstance(err["input"], bool):
        word = "an integer" if kind == "int_type" else "a number"
        return loc, f"expected {word}, not a boolean (YAML reads true/false/yes/no/on/off as booleans)"
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return loc, msg


def _clean_loc(loc: Loc, union_tags: frozenset[str]) -> list[str | int]:
    """Drop the tag that pydantic inserts after a list index for discriminated unions."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if i > 0 and isinstance(loc[i - 1], int) and part in union_tags:
            continue
        out.append(part)
    return out


def validate(doc: RawDocument, model: type[M], union_tags: frozenset[str] = frozenset()) -> M:
    """Validate a raw document against a model, turning every pydantic error into a located one."""
    try:
        return model.model_validate(doc.data)
    except pydantic.ValidationError as exc:
        raise InvalidDocument([doc.error(*_located(err, union_tags)) for err in exc.errors()]) from None

"""Loading YAML documents into pydantic models, with every error located.

A bad plan or topology is refused with *all* its errors at once, each naming the file,
the path inside the document (``steps[3].region``), the line when known, and what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, TypeVar

import pydantic
import yaml

Loc = Sequence[str | int]
M = TypeVar("M", bound=pydantic.BaseModel)


def format_path(loc: Loc) -> str:
    """``("steps", 3, "region")`` -> ``steps[3].region``."""
    out = ""
    for part in loc:
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
    """A document (plan, topology) that cannot be used; carries every error found."""

    def __init__(self, errors: list[DocumentError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


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

    def error(self, loc: Loc, message: str) -> DocumentError:
        return DocumentError(self.file, format_path(loc), message, self.locator.line(loc))


def read_yaml(path: str | Path) -> RawDocument:
    """Read one YAML file; an unreadable or unparsable file is an InvalidDocument."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidDocument([DocumentError(name, "(document)", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidDocument([DocumentError(name, "(document)", f"cannot read file: {exc}")]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidDocument([DocumentError(name, "(document)", f"not valid YAML: {problem}", line)]) from None
    if not isinstance(data, dict):
        raise InvalidDocument(
            [DocumentError(name, "(document)", "expected a mapping of keys to values at the top level", 1)]
        )
    return RawDocument(name, data, _Locator(node))


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return msg


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
        errors = []
        for err in exc.errors():
            loc = _clean_loc(err["loc"], union_tags)
            errors.append(doc.error(loc, _message(err)))
        raise InvalidDocument(errors) from None

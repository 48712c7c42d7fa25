"""Loading YAML documents into pydantic models, with every error located.

A bad plan or topology is refused with *all* its errors at once, each naming the file,
the path inside the document (``steps[3].region``), the line when known, and what is wrong.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

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
    """A document (plan, topology) that cannot be used; carries every error found, in line order
    (file by file when several documents were read)."""

    def __init__(self, errors: list[DocumentError]):
        files = list(dict.fromkeys(e.file for e in errors))  # each file's errors together, in line order
        self.errors = sorted(errors, key=lambda e: (files.index(e.file), e.line or 0))
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
                found.append(((*loc, key.value), f"duplicate key (first given on line {first_line[key.value]})", line))
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


@dataclass(frozen=True)
class Limits:
    """Sizes no real plan or topology reaches, refused before the document is validated (a
    50 MB plan of a million steps must not take minutes and gigabytes to be called valid).

    The file size is checked before reading; the rest on the parsed YAML nodes, before any
    Python object is built: ``nodes`` counts every value, aliases as often as they are used
    (so an alias bomb is refused too)."""

    file_bytes: int = 1024 * 1024
    nodes: int = 100_000
    text_chars: int = 10_000
    depth: int = 50
    # Top-level lists: a plan's steps and services.
    items: tuple[tuple[str, int], ...] = (("steps", 200), ("services", 100))


LIMITS = Limits()


def _size_problem(node: yaml.Node, limits: Limits) -> tuple[str, int | None] | None:
    """The first limit the composed document exceeds: (what, line)."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            for name, most in limits.items:
                if isinstance(key, yaml.ScalarNode) and key.value == name and isinstance(value, yaml.SequenceNode):
                    if len(value.value) > most:
                        return f"'{name}' lists {len(value.value)} items; at most {most} are allowed", key.start_mark.line + 1
    budget = limits.nodes
    stack: list[tuple[yaml.Node, int]] = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        budget -= 1
        if budget < 0:
            return f"the document has more than {limits.nodes} values; no real plan or topology has so many", None
        if depth > limits.depth:
            return f"the document is nested more than {limits.depth} levels deep", current.start_mark.line + 1
        if isinstance(current, yaml.ScalarNode):
            if len(current.value) > limits.text_chars:
                line = current.start_mark.line + 1
                return f"a value is {len(current.value)} characters long; at most {limits.text_chars} are allowed", line
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((item, depth + 1) for item in current.value)
        elif isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
    return None


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, whose impossible dates and times (``2026-02-30``, ``24:61``) are
    document errors at their line, not Python's ValueError or OverflowError."""

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"'{node.value}' is not a real date or time ({exc}); quote it to mean text", node.start_mark
            ) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def read_yaml(path: str | Path, limits: Limits = LIMITS) -> RawDocument:
    """Read one YAML mapping; an unreadable, oversized or unparsable file, a repeated key or a
    key that is not text is an InvalidDocument."""
    name = str(path)
    file = Path(path)
    try:
        if file.is_dir():
            raise InvalidDocument([DocumentError(name, "(document)", "is a directory, not a file")])
        size = file.stat().st_size
        if size > limits.file_bytes:
            message = (
                f"the file is {size:,} bytes; at most {limits.file_bytes:,} are allowed (no real plan or topology is so large)"
            )
            raise InvalidDocument([DocumentError(name, "(document)", message)])
        raw = file.read_bytes()
    except FileNotFoundError:
        raise InvalidDocument([DocumentError(name, "(document)", "file not found")]) from None
    except OSError as exc:
        raise InvalidDocument([DocumentError(name, "(document)", f"cannot read file: {exc.strerror or exc}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"the file is not UTF-8 text (byte {exc.start} is 0x{raw[exc.start]:02x}): is it a YAML file?"
        raise InvalidDocument([DocumentError(name, "(document)", message)]) from None
    if "\x00" in text:
        raise InvalidDocument(
            [DocumentError(name, "(document)", "the file is not text (it holds NUL bytes): is it a YAML file?")]
        )
    loader = None
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise InvalidDocument(
                [DocumentError(name, "(document)", f"the document is nested more than {limits.depth} levels deep")]
            ) from None
        if node is None:
            raise InvalidDocument([DocumentError(name, "(document)", "the file is empty")])
        too_big = _size_problem(node, limits)
        if too_big:
            raise InvalidDocument([DocumentError(name, "(document)", too_big[0], too_big[1])])
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


_TYPE_WORDS = {
    str: "text",
    int: "a whole number",
    float: "a number",
    bool: "true/false",
    list: "a list",
    dict: "a mapping",
    type(None): "nothing (null)",
}


def _kind_of(value: Any) -> str:
    """What was written, in the document's words: ``text ('half')``, ``1.5``, ``a list``."""
    if isinstance(value, str):
        return f"text ('{value if len(value) <= 40 else value[:39] + '…'}')"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return next((word for kind, word in _TYPE_WORDS.items() if type(value) is kind), type(value).__name__)


def _count(n: Any, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def _plain(err: Any) -> str | None:
    """Pydantic's wording in plain words (None: keep pydantic's)."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    noun = "entry" if isinstance(value, dict) else "item"
    plural = "entries" if noun == "entry" else "items"
    words: dict[str, Any] = {
        "too_short": lambda: (
            f"must have at least "
            f"{_count(ctx.get('min_length'), noun, plural) if ctx.get('min_length') != 1 else 'one ' + noun} "
            f"(it has {ctx.get('actual_length', 0)})"
        ),
        "too_long": lambda: f"must have at most {ctx.get('max_length')} {plural} (it has {ctx.get('actual_length', '?')})",
        "string_too_short": lambda: f"must be at least {_count(ctx.get('min_length'), 'character')} long",
        "string_too_long": lambda: f"must be at most {_count(ctx.get('max_length'), 'character')} long",
        "greater_than_equal": lambda: f"must be at least {ctx.get('ge')} (it is {value})",
        "greater_than": lambda: f"must be more than {ctx.get('gt')} (it is {value})",
        "less_than_equal": lambda: f"must be at most {ctx.get('le')} (it is {value})",
        "less_than": lambda: f"must be less than {ctx.get('lt')} (it is {value})",
        "int_type": lambda: f"expected a whole number, not {_kind_of(value)}",
        "int_parsing": lambda: f"expected a whole number, not '{value}'",
        "int_from_float": lambda: f"expected a whole number, not {value}",
        "float_type": lambda: f"expected a number, not {_kind_of(value)}",
        "float_parsing": lambda: f"expected a number, not '{value}'",
        "string_type": lambda: f"expected text, not {_kind_of(value)}",
        "list_type": lambda: f"expected a list, not {_kind_of(value)}",
        "dict_type": lambda: f"expected a mapping of keys to values, not {_kind_of(value)}",
        "model_type": lambda: f"expected a mapping of keys to values, not {_kind_of(value)}",
        "model_attributes_type": lambda: f"expected a mapping of keys to values, not {_kind_of(value)}",
        "bool_type": lambda: f"expected true or false, not {_kind_of(value)}",
        "bool_parsing": lambda: f"expected true or false, not '{value}'",
        "literal_error": lambda: f"'{value}' is not one of {ctx.get('expected')}{did_you_mean(value, _literal_choices(ctx))}",
        "enum": lambda: f"'{value}' is not one of {ctx.get('expected')}{did_you_mean(value, _literal_choices(ctx))}",
    }
    make = words.get(kind)
    return make() if make else None


def _literal_choices(ctx: dict[str, Any]) -> list[str]:
    return [part.strip().strip("'\"") for part in str(ctx.get("expected", "")).replace(" or ", ", ").split(",")]


def did_you_mean(value: Any, choices: typing.Iterable[str], cutoff: float = 0.6) -> str:
    """`` (did you mean 'x'?)`` when ``value`` is close to one of ``choices``, else empty."""
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=cutoff)
    return f" (did you mean '{close[0]}'?)" if close else ""


_UNIONS = (typing.Union, types.UnionType)


def _model_in(annotation: Any, value: Any) -> type[pydantic.BaseModel] | None:
    """The model an annotation stands for, given the value written there (a discriminated
    union's member by its ``kind``)."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    if typing.get_origin(annotation) not in _UNIONS:
        return None
    members = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, pydantic.BaseModel)]
    for member in members:
        tag = member.model_fields.get("kind")
        if tag is None or len(members) == 1:
            return member
        if isinstance(value, dict) and value.get("kind") in typing.get_args(tag.annotation):
            return member
    return None


def _item_type(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (list, tuple, set, frozenset) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    if origin in _UNIONS:
        for arg in args:
            inner = _item_type(arg)
            if inner is not None:
                return inner
    return None


def known_keys(model: type[pydantic.BaseModel], loc: Loc, data: Any) -> list[str]:
    """The keys a document may hold at ``loc`` (a mapping's place), following the data through
    lists, mappings and discriminated unions; empty when the place is not a model."""
    annotation: Any = model
    value = data
    for part in loc:
        found = _model_in(annotation, value)
        if found is not None and isinstance(part, str) and part in found.model_fields:
            annotation = found.model_fields[part].annotation
        else:
            annotation = _item_type(annotation)
            if annotation is None:
                return []
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            value = None
    found = _model_in(annotation, value)
    return list(found.model_fields) if found is not None else []


def _located(
    err: Any, union_tags: frozenset[str], model: type[pydantic.BaseModel] | None = None, data: Any = None
) -> tuple[list[str | int], str]:
    """A pydantic error's place in the document, and what to tell the user."""
    loc = _clean_loc(err["loc"], union_tags, data)
    kind = err["type"]
    if kind == "extra_forbidden":
        key = loc[-1] if loc else None
        hint = did_you_mean(key, known_keys(model, loc[:-1], data)) if model is not None else ""
        return loc, f"unknown key{hint}"
    if kind == "missing":
        return loc, "required key is missing"
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        # The step's kind is what is missing or wrong: point at it.
        discriminator = err["ctx"]["discriminator"].strip("'")
        if kind == "union_tag_not_found":
            return [*loc, discriminator], "required key is missing"
        ctx = err["ctx"]
        tags = [t.strip().strip("'") for t in str(ctx["expected_tags"]).split(",")]
        hint = did_you_mean(ctx["tag"], tags)
        return [*loc, discriminator], f"unknown {discriminator} '{ctx['tag']}'{hint} (known: {ctx['expected_tags']})"
    if kind in ("int_type", "float_type") and isinstance(err["input"], bool):
        word = "an integer" if kind == "int_type" else "a number"
        return loc, f"expected {word}, not a boolean (YAML reads true/false/yes/no/on/off as booleans)"
    plain = _plain(err)
    if plain is not None:
        return loc, plain
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return loc, msg


def _clean_loc(loc: Loc, union_tags: frozenset[str], data: Any = None) -> list[str | int]:
    """Drop the tags that pydantic inserts into a location for a tagged union (a step's kind after
    its index; a binding's provider after its key): a part that names a tag and is not a key of
    the document where it stands."""
    out: list[str | int] = []
    here = data
    for part in loc:
        if isinstance(part, str) and part in union_tags and not (isinstance(here, dict) and part in here):
            continue
        out.append(part)
        if isinstance(here, dict):
            here = here.get(part)
        elif isinstance(here, list) and isinstance(part, int) and 0 <= part < len(here):
            here = here[part]
        else:
            here = None
    return out


# What each kind of document has at its top level, to tell one passed for the other.
DOCUMENT_KINDS = {"plan": ("steps", "source", "target"), "topology": ("dns_zones", "project")}


def _wrong_kind(doc: RawDocument, expected: str) -> DocumentError | None:
    if not isinstance(doc.data, dict) or expected not in DOCUMENT_KINDS:
        return None
    if any(key in doc.data for key in DOCUMENT_KINDS[expected]):
        return None
    for kind, keys in DOCUMENT_KINDS.items():
        has = [key for key in keys if key in doc.data]
        if kind != expected and has:
            return DocumentError(
                doc.file, "(document)", f"expected a {expected}, but this is a {kind} (it has {', '.join(has)})", 1
            )
    return None


def validate(doc: RawDocument, model: type[M], union_tags: frozenset[str] = frozenset()) -> M:
    """Validate a raw document against a model, turning every pydantic error into a located one."""
    try:
        return model.model_validate(doc.data)
    except pydantic.ValidationError as exc:
        wrong = _wrong_kind(doc, model.__name__.lower())
        if wrong is not None:
            raise InvalidDocument([wrong]) from None
        raise InvalidDocument([doc.error(*_located(err, union_tags, model, doc.data)) for err in exc.errors()]) from None

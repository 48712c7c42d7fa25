"""Helpers for document-validation tests: write YAML, load it, and find the line a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from evac.documents import DocumentError, InvalidDocument


def edit(text: str, old: str, new: str) -> str:
    """Replace the one occurrence of ``old`` (a test must say exactly what it changes)."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def line_of(text: str, needle: str) -> int:
    """The 1-based line holding ``needle``, which must be on exactly one line."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) == 1, f"{needle!r} is on lines {hits}"
    return hits[0]


def write(directory: Path, text: str, name: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(load, path: Path, *args) -> list[DocumentError]:
    """The errors a load refuses the document with (failing the test if it is accepted)."""
    with pytest.raises(InvalidDocument) as caught:
        load(path, *args)
    errors = caught.value.errors
    assert errors, "InvalidDocument without errors"
    for err in errors:
        assert isinstance(err, DocumentError)
        assert err.file == str(path)
    return errors


def only_error(load, path: Path, *args) -> DocumentError:
    errors = errors_of(load, path, *args)
    assert len(errors) == 1, errors
    return errors[0]

"""List methods: pages (``maxResults`` / ``pageToken`` / ``nextPageToken``), Compute Engine's
``filter`` expressions and ``orderBy``.

Filters follow the published grammar (the ``filter`` parameter of any Compute list
method), applied to the resource as the API returns it:

* AIP-160 comparisons ``field OP value`` with ``=``, ``!=``, ``<``, ``>``, ``<=``, ``>=``
  and ``:`` (``field:*`` tests presence); nested fields by dots (``status.isStable = true``);
  several parenthesised expressions are ANDed, unless joined by ``OR`` (which binds tighter,
  as AIP-160 says).
* Regular expressions ``field eq RE`` / ``field ne RE`` matching the whole value, alone or
  as several parenthesised expressions; not mixed with comparisons.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Query

from emulator.errors import invalid

T = TypeVar("T")
Predicate = Callable[[dict[str, Any]], bool]

_TERM = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(!=|<=|>=|=|<|>|:|\beq\b|\bne\b)\s*(.*?)\s*$")
_GROUP = re.compile(r"\(([^()]*)\)")
_CONNECTOR = re.compile(r"^\s*(AND|OR)?\s*$")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


def page(
    items: list[T],
    max_results: int | None,
    page_token: str | None,
    *,
    default_size: int | None = None,
    largest: int | None = None,
) -> tuple[list[T], str | None]:
    """One page of ``items`` and the token of the next, if any (an offset, opaque to callers).

    ``maxResults`` 0 or absent means ``default_size`` (None: everything)."""
    start = 0
    if page_token:
        if not page_token.isdigit() or int(page_token) > len(items):
            raise invalid(f"Invalid value for field 'pageToken': '{page_token}'.")
        start = int(page_token)
    if max_results is not None and max_results < 0:
        raise invalid(f"Invalid value for field 'maxResults': {max_results}. Must not be negative.")
    if max_results is not None and largest is not None and max_results > largest:
        raise invalid(f"Invalid value for field 'maxResults': {max_results}. Must be at most {largest}.")
    size = max_results or default_size
    end = len(items) if size is None else start + size
    return items[start:end], (str(end) if end < len(items) else None)


def compute_filter(expression: str | None) -> Predicate:
    """A predicate over a resource's JSON for a Compute Engine ``filter`` expression."""
    if not expression or not expression.strip():
        return lambda resource: True
    groups = _GROUP.findall(expression)
    if not groups:
        return _conjunction([[_term(expression, expression)]])
    between = _GROUP.split(expression)[::2]  # the text around the groups
    clauses: list[list[Predicate]] = [[_term(groups[0], expression)]]
    for connector, group in zip(between[1:-1], groups[1:], strict=False):
        joined = _CONNECTOR.match(connector)
        if joined is None:
            raise _bad(expression)
        if joined.group(1) == "OR":
            clauses[-1].append(_term(group, expression))
        else:
            clauses.append([_term(group, expression)])
    if between[0].strip() or between[-1].strip():
        raise _bad(expression)
    regex_terms = sum(bool(re.search(r"\s(eq|ne)\s", g)) for g in groups)
    if 0 < regex_terms < len(groups):
        raise invalid(f"Invalid value for field 'filter': '{expression}'. Regular expressions cannot be mixed.")
    return _conjunction(clauses)


def _conjunction(clauses: list[list[Predicate]]) -> Predicate:
    return lambda resource: all(any(term(resource) for term in clause) for clause in clauses)


def _bad(expression: str) -> Exception:
    return invalid(f"Invalid value for field 'filter': '{expression}'. Expected 'field OPERATOR value'.")


def _term(text: str, expression: str) -> Predicate:
    match = _TERM.match(text)
    if match is None or not match.group(3):
        raise _bad(expression)
    field, op, raw = match.groups()
    value = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"" else raw

    def predicate(resource: dict[str, Any]) -> bool:
        found = _lookup(resource, field)
        if op == ":":
            if value == "*":
                return found is not None
            return value in [_text(v) for v in found] if isinstance(found, list) else _text(found) == value
        if op in ("eq", "ne"):
            matched = found is not None and re.fullmatch(value, _text(found)) is not None
            return matched if op == "eq" else not matched
        if op in ("=", "!="):
            equal = found is not None and _text(found) == value
            return equal if op == "=" else not equal
        if found is None:
            return False
        try:
            return _COMPARE[op](float(found), float(value))
        except (TypeError, ValueError):
            return _COMPARE[op](_text(found), value)

    if op in ("eq", "ne"):
        try:
            re.compile(value)
        except re.error:
            raise invalid(f"Invalid value for field 'filter': '{expression}'. '{value}' is not a regular expression.") from None
    return predicate


def _lookup(resource: Any, field: str) -> Any:
    for part in field.split("."):
        if not isinstance(resource, dict):
            return None
        resource = resource.get(part)
    return resource


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def order(items: list[dict[str, Any]], order_by: str | None) -> list[dict[str, Any]]:
    """Compute Engine supports ordering by ``name`` or ``creationTimestamp desc``."""
    if order_by is None or order_by.strip() == "name":
        return sorted(items, key=lambda item: str(item.get("name", "")))
    if re.fullmatch(r"\s*creationTimestamp\s+desc\s*", order_by):
        return sorted(items, key=lambda item: str(item.get("creationTimestamp", "")), reverse=True)
    raise invalid(f"Invalid value for field 'orderBy': '{order_by}'. Use 'name' or 'creationTimestamp desc'.")


class ListQuery:
    """The query parameters of every Compute Engine list method (a FastAPI dependency)."""

    def __init__(
        self,
        filter_: str | None = Query(None, alias="filter"),
        max_results: int | None = Query(None, alias="maxResults"),
        page_token: str | None = Query(None, alias="pageToken"),
        order_by: str | None = Query(None, alias="orderBy"),
    ):
        self.filter_ = filter_
        self.max_results = max_results
        self.page_token = page_token
        self.order_by = order_by

    def as_kwargs(self) -> dict[str, Any]:
        """As ``compute_list`` takes them."""
        return {
            "filter_": self.filter_,
            "max_results": self.max_results,
            "page_token": self.page_token,
            "order_by": self.order_by,
        }


def compute_list(
    items: list[dict[str, Any]],
    *,
    kind: str,
    list_id: str,
    self_link: str,
    filter_: str | None,
    max_results: int | None,
    page_token: str | None,
    order_by: str | None,
) -> dict[str, Any]:
    """A Compute Engine list response (``items`` left out when empty, as the API does)."""
    keep = compute_filter(filter_)
    selected = order([item for item in items if keep(item)], order_by)
    shown, next_token = page(selected, max_results, page_token, default_size=500, largest=500)
    body: dict[str, Any] = {"kind": kind, "id": list_id, "selfLink": self_link}
    if shown:
        body["items"] = shown
    if next_token:
        body["nextPageToken"] = next_token
    return body

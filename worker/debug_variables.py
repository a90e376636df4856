"""The user's variables as DAP ``Variable`` objects, while no thread is stopped.

When the debugger holds a thread, pydevd describes that thread's frames itself; between
cells JupyterLab's variables panel shows the namespace, described here. References are
numbers handed out per listing, so a panel can expand a variable it has just listed.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import reprlib
from typing import Any

MAX_CHILDREN = 300
_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 200
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 20

# IPython's input/output caches (_, __, _i3, _5, _ih, _oh, _dh...), as `%who` hides them.
IPYTHON_CACHE_NAME = re.compile(r"_+|_i+|_i\d+|_\d+|_[ido]h")


def visible_names(shell) -> list[str]:
    """User-defined names, as ``%who`` lists them."""
    ns, hidden = shell.user_ns, shell.user_ns_hidden
    missing = object()
    return [name for name, value in list(ns.items())
            if not name.startswith("_") and value is not hidden.get(name, missing)]


def hidden_from_frames(name: str, shell) -> bool:
    """IPython's own names, to leave out of pydevd's description of the globals."""
    return name in shell.user_ns_hidden or bool(IPYTHON_CACHE_NAME.fullmatch(name))


def safe_repr(value: Any) -> str:
    try:
        return _repr.repr(value)
    except Exception as exc:  # user __repr__ can raise anything
        return f"<repr failed: {type(exc).__name__}>"


def children_of(value: Any) -> list[tuple[str, str, Any]]:
    """(name, evaluate suffix, value) for what a variable contains."""
    if isinstance(value, dict):
        items = itertools.islice(value.items(), MAX_CHILDREN)
        return [(safe_repr(k), f"[{safe_repr(k)}]", v) for k, v in items]
    if isinstance(value, (list, tuple)):
        return [(str(i), f"[{i}]", v) for i, v in enumerate(value[:MAX_CHILDREN])]
    if isinstance(value, (set, frozenset)):
        return [(str(i), "", v) for i, v in enumerate(itertools.islice(value, MAX_CHILDREN))]
    try:
        attributes = vars(value)
    except TypeError:
        return []
    items = itertools.islice(sorted(attributes.items(), key=lambda kv: str(kv[0])), MAX_CHILDREN)
    return [(str(k), f".{k}", v) for k, v in items if not str(k).startswith("__")]


def has_children(value: Any) -> bool:
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        return len(value) > 0
    try:
        return any(not str(k).startswith("__") for k in vars(value))
    except TypeError:
        return False


class NamespaceVariables:
    def __init__(self) -> None:
        self._refs: dict[int, tuple[Any, str]] = {}
        self._next_ref = itertools.count(1)

    def top(self, shell) -> list[dict[str, Any]]:
        """The namespace's variables; earlier references are forgotten."""
        self._refs.clear()
        ns = shell.user_ns
        return [self.describe(name, ns[name], name) for name in visible_names(shell)
                if name in ns]

    def children(self, ref: int) -> list[dict[str, Any]]:
        if ref not in self._refs:
            return []
        value, expression = self._refs[ref]
        return [self.describe(name, child, expression + suffix if suffix else "")
                for name, suffix, child in children_of(value)]

    def describe(self, name: str, value: Any, expression: str) -> dict[str, Any]:
        ref = 0
        if has_children(value):
            ref = next(self._next_ref)
            self._refs[ref] = (value, expression)
        variable = {"name": name, "value": safe_repr(value), "type": type(value).__name__,
                    "variablesReference": ref}
        if expression:
            variable["evaluateName"] = expression
        return variable


def rich_json(value: Any) -> str:
    """IPython's display formats of ``value`` as JSON text (evaluated in a stopped frame)."""
    from IPython import get_ipython

    data, metadata = get_ipython().display_formatter.format(value)
    return json.dumps({"data": data, "metadata": metadata}, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)

"""Open registries: named entries chosen by name, filled by the paper's
definitions and by user plug-ins through the same call.

    from symflow.registry import GROUPS
    GROUPS.register(MyGroup(...))

A plug-in is any importable module that registers entries when imported; the
workflow imports the modules listed under ``plugins:`` in the config before it
validates anything, and every job that looks a name up imports them again (each
job is a new process), so their names are accepted everywhere. docs/extending.md
walks through one (examples/channel_symmetry.py).
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from typing import Generic, Iterable, Iterator, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that no registry entry has; the message lists what is registered."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class Registry(Generic[T]):
    """A name -> entry mapping with helpful errors."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, entry: T, *, replace: bool = False) -> T:
        name = getattr(entry, "name")
        if not isinstance(name, str) or not name.replace("_", "").isalnum():
            raise ValueError(f"{self.kind} name {name!r} must be letters, digits and '_' only")
        if name in self._entries and not replace and self._entries[name] is not entry:
            raise ValueError(f"{self.kind} {name!r} is registered already")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), self._entries, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown {self.kind} {name!r}{hint}; registered: {', '.join(self.names())}"

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[T]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)


def load_plugins(modules: Iterable[str]) -> None:
    """Import each plug-in module (which registers its entries on import).

    A module is found on the Python path or in the working directory (where
    Snakemake runs the workflow and its jobs), so a plug-in file beside the config
    works without installing it.
    """
    modules = list(modules or [])
    if modules and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ImportError(f"plug-in module {module!r} could not be imported: {exc}") from exc

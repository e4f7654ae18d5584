"""Unpickling data from a user's folder without running its code.

A pickle is a program: its GLOBAL and REDUCE opcodes import and call anything, so
``pickle.load`` of a downloaded or shared file runs whatever the file says (a checksum
listed in the same folder proves nothing about its origin). CIFAR-10's "python version"
batches are pickles, so symflow reads them with :func:`load_plain`, which admits only
what a batch holds: dicts, lists, tuples, bytes, str, numbers, booleans, None and numpy
arrays (and scalars) of plain dtypes (bool, integers, floats, complex, bytes, str).

Two gates, both before anything of the file is called:

1. the whole opcode stream is read first (:func:`pickletools.genops`, which builds
   nothing): every import it names must be one of :data:`ALLOWED` (a GLOBAL names it in
   its argument; a STACK_GLOBAL must take its two names from string opcodes just before
   it, or it is refused as unreadable), and the opcodes that build instances of any class
   (INST, OBJ, NEWOBJ, NEWOBJ_EX, the extension registry and persistent ids) are refused;
2. the load itself goes through an Unpickler whose ``find_class`` returns only the
   objects of :data:`ALLOWED` (a numpy dtype refuses object and structured dtypes as it
   is built), never importing a module.

Anything else is refused with one line (:class:`UnsafePickleError`) that names the file
and what it asked for. The result is then checked to hold only the admitted types.
"""

from __future__ import annotations

import io
import pickle
import pickletools
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


class UnsafePickleError(ValueError):
    """A pickle that asks for more than plain data."""


PLAIN_KINDS = "biufcSU?"  # numpy dtype kinds admitted: bool, integers, floats, complex, bytes, str


def _plain_dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(*args)
    if dtype.kind not in PLAIN_KINDS or dtype.hasobject or dtype.fields is not None:
        raise UnsafePickleError(f"a numpy dtype {dtype!s} (only plain dtypes {PLAIN_KINDS!r} are admitted)")
    return dtype


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    """_codecs.encode as Python 3's protocol-2 pickles use it for bytes (str -> latin-1 bytes)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode of {type(text).__name__} with {encoding!r}")
    return text.encode("latin1")


def _numpy_internals() -> dict[tuple[str, str], Any]:
    from numpy._core import multiarray, numeric  # numpy >= 2; old pickles say numpy.core

    out: dict[tuple[str, str], Any] = {}
    for package in ("numpy.core", "numpy._core"):
        out[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        out[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        out[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return out


# (module, name) -> the object that stands for it: what numpy's own pickles of arrays and
# scalars name (numpy.core in pickles written before numpy 2, numpy._core after), and the
# encoder Python 3 uses for bytes in protocol-2 pickles
ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _plain_dtype,
    ("_codecs", "encode"): _latin1,
    **_numpy_internals(),
}

# opcodes that make instances of classes (or resolve objects outside the pickle): refused
_REFUSED_OPS = {"INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID",
                "NEXT_BUFFER", "READONLY_BUFFER"}  # fmt: skip
_STRING_OPS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE",
               "BINUNICODE8"}  # fmt: skip
_NO_STACK_OPS = {"PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"}  # leave the stack as it is


def imports_of(data: bytes) -> list[tuple[str, str]]:
    """The (module, name) pairs a pickle would import, read from its opcodes without running
    any; UnsafePickleError for an opcode that builds class instances, or a STACK_GLOBAL whose
    names are not spelled out by the string opcodes just before it; pickle.UnpicklingError
    where the bytes are no pickle."""
    try:  # the whole stream first: a file that is no pickle at all is not judged by its first bytes
        ops = list(pickletools.genops(data))
    except Exception as exc:  # genops stops at the first byte that is no opcode, or at the end without STOP
        raise pickle.UnpicklingError(f"not a pickle: {' '.join(str(exc).split())}") from None
    memo: dict[int, str | None] = {}
    pushed: list[str | None] = []  # what each stack-changing opcode pushed (None: not a known string)
    found = []
    for op, arg, _pos in ops:
        name = op.name
        if name in _REFUSED_OPS:
            raise UnsafePickleError(f"opcode {name} (it builds an instance of a class)")
        top = pushed[-1] if pushed else None
        if name == "MEMOIZE":
            memo[len(memo)] = top
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = top
        elif name in _NO_STACK_OPS:
            pass
        elif name in _STRING_OPS:
            pushed.append(arg.decode("latin1") if isinstance(arg, bytes) else arg)
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            pushed.append(memo.get(int(arg)))
        elif name == "GLOBAL":
            module, _, attr = arg.partition(" ")
            found.append((module, attr))
            pushed.append(None)
        elif name == "STACK_GLOBAL":
            module, attr = (pushed[-2], pushed[-1]) if len(pushed) >= 2 else (None, None)
            if not (isinstance(module, str) and isinstance(attr, str)):
                raise UnsafePickleError("a STACK_GLOBAL whose module and name are not spelled out before it")
            found.append((module, attr))
            pushed.append(None)
        else:
            pushed.append(None)
    return found


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"{module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("a persistent id")


def _check_plain(value: Any, depth: int = 0) -> None:
    if depth > 100:
        raise UnsafePickleError("nesting deeper than 100")
    if value is None or isinstance(value, (bool, int, float, complex, bytes, str)):
        return
    if isinstance(value, (np.ndarray, np.generic)):
        _plain_dtype(value.dtype)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _check_plain(k, depth + 1)
            _check_plain(v, depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for v in value:
            _check_plain(v, depth + 1)
        return
    raise UnsafePickleError(f"an object of type {type(value).__name__}")


def load_plain(source: str | Path | bytes | BinaryIO, what: str = "a data file", encoding: str = "bytes") -> Any:
    """Unpickle `source` (a path, the bytes, or a binary file) if it holds only plain data;
    UnsafePickleError, one line naming the file and what it asked for, before anything of it
    is called; pickle.UnpicklingError where it is no pickle at all (empty, truncated, another
    format). `encoding` as pickle.load's (CIFAR-10's Python 2 strings: "bytes")."""
    if isinstance(source, (str, Path)):
        label, data = str(source), Path(source).read_bytes()
    elif isinstance(source, bytes):
        label, data = what, source
    else:
        label, data = getattr(source, "name", what), source.read()
    refuse = (f"{label}: refused, not unpickled: {what} holds only dicts, lists, bytes, str, numbers "
              f"and numpy arrays of plain dtypes, and this pickle asks for ")  # fmt: skip
    try:
        for module, name in imports_of(data):
            if (module, name) not in ALLOWED:
                raise UnsafePickleError(f"{module}.{name}")
    except UnsafePickleError as exc:
        raise UnsafePickleError(refuse + str(exc)) from None
    try:
        value = _PlainUnpickler(io.BytesIO(data), encoding=encoding).load()
        _check_plain(value)
    except UnsafePickleError as exc:
        raise UnsafePickleError(refuse + str(exc)) from None
    return value

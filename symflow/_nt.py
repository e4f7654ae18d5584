"""Import neural-tangents 0.6.5 on current JAX.

neural-tangents 0.6.5 (the last release, Dec 2023) was written against jax <= 0.5.
Four things it touches have moved or gone since; this module puts them back
*before* ``neural_tangents`` is imported, and is the only place in symflow that
imports it::

    from symflow._nt import nt, stax

What is patched, and why it is safe:

1. ``neural_tangents.experimental.empirical_tf`` imports TensorFlow and tf2jax
   at import time for an optional TF bridge that symflow never uses. We install
   neural-tangents without its TensorFlow dependencies and register a stub
   module whose functions raise a clear error if anyone calls them.
2. ``Jaxpr, JaxprEqn, Literal, Primitive, Var`` left ``jax.core`` for
   ``jax.extend.core``; they are aliased back (same objects, nothing copied).
3. ``jax.util`` (``safe_map``, ``safe_zip``) was removed; a tiny module with the
   same semantics (zip/map that insist on equal lengths) is registered.
4. ``jax.interpreters.ad.zeros_like_p`` was removed; nt only uses it as a key of
   its structure-rule tables for the empirical NTK, so a placeholder primitive
   that is never bound is enough.

``max_learning_rate`` in nt calls ``scipy.linalg.eigvalsh(..., eigvals=...)``,
an argument scipy removed; symflow computes the learning rate itself
(:func:`symflow.train.max_learning_rate`).

The guard for all of this is ``tests/test_golden.py``: kernel values for every
architecture computed once with neural-tangents 0.6.5 on jax 0.4.x/0.5.x, matched
by this stack.
"""

from __future__ import annotations

import importlib
import sys
import types

import jax
import jax.core
import jax.extend.core as _jex_core
from jax.interpreters import ad as _ad


def _install_shims() -> None:
    for name in ("Jaxpr", "JaxprEqn", "Literal", "Primitive", "Var"):
        if not hasattr(jax.core, name):
            setattr(jax.core, name, getattr(_jex_core, name))

    if "jax.util" not in sys.modules:
        try:  # pragma: no cover - depends on the installed jax
            importlib.import_module("jax.util")
        except ImportError:
            util = types.ModuleType("jax.util")

            def safe_zip(*args):
                n = len(args[0])
                for a in args[1:]:
                    if len(a) != n:
                        raise ValueError(f"length mismatch: {[len(a) for a in args]}")
                return list(zip(*args))

            def safe_map(f, *args):
                args = list(map(list, args))
                n = len(args[0])
                for a in args[1:]:
                    if len(a) != n:
                        raise ValueError(f"length mismatch: {[len(a) for a in args]}")
                return list(map(f, *args))

            util.safe_zip = safe_zip
            util.safe_map = safe_map
            sys.modules["jax.util"] = util
            jax.util = util

    if not hasattr(_ad, "zeros_like_p"):
        _ad.zeros_like_p = _jex_core.Primitive("zeros_like_placeholder")

    stub_name = "neural_tangents.experimental.empirical_tf.empirical"
    if stub_name not in sys.modules:
        stub = types.ModuleType(stub_name)

        def _unavailable(*_args, **_kwargs):
            raise ImportError(
                "neural_tangents' TensorFlow bridge is not installed with symflow "
                "(it needs tensorflow and tf2jax); use the JAX functions instead"
            )

        stub.empirical_ntk_fn_tf = _unavailable
        stub.get_apply_fn_and_params = _unavailable
        sys.modules[stub_name] = stub


_install_shims()

import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

__all__ = ["nt", "stax"]

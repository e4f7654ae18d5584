"""The package's modules import each other without a cycle.

Every module of symflow is read with ast (nothing is imported) and every import of a
symflow module is an edge, wherever it stands: at the top, inside a function or a
conditional, relative or absolute, and importlib.import_module("symflow....") with a
literal name. A function-level import hides a cycle from the interpreter only until
someone moves it to the top; it is still a cycle of the design.

How a statement becomes an edge (from the importing module to):

    import symflow.a.b                the module symflow.a.b
    from symflow.a import b           symflow.a.b where that is a module, else symflow.a
                                      (a name from the package's __init__ or module a)
    from symflow.a.b import name      symflow.a.b
    from . import b, from .b import   the same, resolved against the importing package

Importing symflow.a.b also runs the __init__ of symflow and symflow.a first; those
implicit parent imports are not edges, so a package whose __init__ gathers its own
submodules (symflow.train) is no cycle by that alone. A submodule that takes a name
from its package's __init__ (`from symflow.train import x`) is an edge to that
__init__, and if the __init__ imports the submodule back, that is a real cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "symflow"


def _modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of the package under `root` (packages by __init__)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _resolve(target: str, names: list[str], modules: dict[str, Path]) -> set[str]:
    """The modules that `from target import names` depends on (target: a dotted module name)."""
    out = set()
    for name in names:
        sub = f"{target}.{name}"
        out.add(sub if sub in modules else target)
    return out


def imports_of(name: str, modules: dict[str, Path]) -> set[str]:
    """The package's modules that module `name` imports, anywhere in its source."""
    path = modules[name]
    package = name if _is_package(name, modules) else name.rpartition(".")[0]
    top = name.split(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == top}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == top:
                out |= _resolve(target, [a.name for a in node.names], modules)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Attribute, ast.Name))
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and node.args[0].value.split(".")[0] == top
        ):
            out.add(node.args[0].value)
    unknown = out - set(modules)
    assert not unknown, f"{name} imports {sorted(unknown)}, which are not modules of the package"
    out.discard(name)
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of `graph` as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # absent: unseen, 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def graph_of(root: Path) -> dict[str, set[str]]:
    modules = _modules(root)
    return {name: imports_of(name, modules) for name in modules}


# Import edges that close a cycle still in the package, each with why it is still there. The
# test fails once one is gone (delete it here then) and for any other cycle.
KNOWN_BACK_EDGES: dict[tuple[str, str], str] = {}  # (importer, imported) -> why it may stay, until it goes


def test_the_package_has_no_import_cycle():
    graph = graph_of(PACKAGE)
    assert len(graph) > 40 and "symflow.engine" in graph  # the walk found the package
    for a, b in KNOWN_BACK_EDGES:
        assert b in graph[a], f"{a} no longer imports {b}: delete it from KNOWN_BACK_EDGES"
        graph[a] = graph[a] - {b}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_walk_sees_every_kind_of_import(tmp_path):
    """A made-up package: each way of importing is an edge, and the cycles are found."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "def f():\n    from pkg import b\n",  # function-level, a module by `from pkg import`
        "b.py": "import pkg.sub.c\n",
        "sub/__init__.py": "from pkg.sub.c import X\n",  # a package gathering its submodule: no cycle
        "sub/c.py": "from .. import d\nX = 1\n",  # relative, two levels
        "d.py": "import importlib\nimportlib.import_module('pkg.e')\n",
        "e.py": "from pkg import VERSION\n",  # a name from the package's __init__
        "f.py": "from pkg.sub import X\n",  # a name from a subpackage's __init__
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    graph = graph_of(pkg)
    assert graph == {
        "pkg": set(),
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.sub.c"},
        "pkg.sub": {"pkg.sub.c"},
        "pkg.sub.c": {"pkg.d"},
        "pkg.d": {"pkg.e"},
        "pkg.e": {"pkg"},
        "pkg.f": {"pkg.sub"},
    }
    assert find_cycle(graph) is None
    (pkg / "sub" / "c.py").write_text("from .. import d\nfrom pkg.sub import Y\nX = 1\n")  # back into sub's __init__
    _assert_cycle(graph_of(pkg), {"pkg.sub", "pkg.sub.c"})
    (pkg / "sub" / "c.py").write_text("from .. import d\nX = 1\n")
    (pkg / "e.py").write_text("def g():\n    from .a import f\n")  # e -> a -> b -> c -> d -> e
    _assert_cycle(graph_of(pkg), {"pkg.a", "pkg.b", "pkg.sub.c", "pkg.d", "pkg.e"})


def _assert_cycle(graph: dict[str, set[str]], through: set[str]) -> None:
    cycle = find_cycle(graph)
    assert cycle and cycle[0] == cycle[-1], cycle
    assert all(b in graph[a] for a, b in zip(cycle, cycle[1:])), cycle
    assert through <= set(cycle), cycle

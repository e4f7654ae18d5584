"""config/README.md's tables of every config key, generated from the schema so that the two
cannot drift apart (tests/test_config_docs.py checks that the file is in step).

The README's first part is prose written by hand (what the config is, how a deployed project
edits it, the overlays); everything after :data:`MARKER` is :func:`key_tables` of
symflow/config.schema.yaml: one section per top-level key, one row per leaf key (nested keys
dotted), with its type, default and description, and the speed knobs (symflow.jobs.SPEED_KNOBS:
changing one reruns nothing) marked. After editing the schema:

    python -m symflow.config_docs config/README.md          # rewrite the generated part
    python -m symflow.config_docs --check config/README.md  # exit status 1 where it is stale
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MARKER = (
    "<!-- Generated from symflow/config.schema.yaml by `python -m symflow.config_docs config/README.md`: "
    "edit the schema, not the text below. -->"
)
SPEED = "**Speed knob.**"  # changes only how fast or where jobs run: editing it reruns nothing


def _resolve(node: Mapping, schema: Mapping) -> dict:
    """`node` with a local $ref ("#/$defs/NAME") merged in; the node's own keys win."""
    ref = node.get("$ref")
    if not ref:
        return dict(node)
    if not ref.startswith("#/$defs/"):
        raise ValueError(f"unsupported $ref {ref!r} (only #/$defs/NAME)")
    target = _resolve(schema["$defs"][ref.removeprefix("#/$defs/")], schema)
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}


def _type(node: Mapping, schema: Mapping) -> str:
    for key in ("anyOf", "oneOf"):
        if key in node:
            return " or ".join(_type(_resolve(alt, schema), schema) for alt in node[key])
    if "enum" in node:
        return "one of " + ", ".join(f"`{_inline(v)}`" for v in node["enum"])
    kinds = node.get("type", "")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    words = []
    for kind in kinds:
        if kind == "array":
            items = _resolve(node.get("items", {}), schema)
            inner = _type(items, schema) if items else ""
            words.append(f"list ({inner})" if inner else "list")
        elif kind == "object" and isinstance(node.get("additionalProperties"), Mapping):
            value = _type(_resolve(node["additionalProperties"], schema), schema)
            words.append(f"mapping of name to {value}" if value else "mapping")
        elif kind:
            words.append({"object": "mapping", "null": "null"}.get(kind, kind))
    return " or ".join(words)


def _inline(value: Any) -> str:
    """A value as YAML flow style on one line (`[a, b]`, `{k: v}`, `null`)."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


_NO_DEFAULT = object()


def _rows(node: Mapping, schema: Mapping, path: tuple[str, ...], inherited: Any, speed: set,
          section_speed: bool = False) -> list[list[str]]:
    """Table rows of every leaf under `node` (an object with properties), keys dotted below the
    section; speed knobs marked, unless the whole section is one (`section_speed`)."""
    rows = []
    own_default = node.get("default", _NO_DEFAULT)
    defaults = own_default if isinstance(own_default, Mapping) and own_default else inherited
    for key, child in node.get("properties", {}).items():
        child = _resolve(child, schema)
        default = child.get("default", _NO_DEFAULT)
        if default is _NO_DEFAULT and isinstance(defaults, Mapping) and key in defaults:
            default = defaults[key]
        here = (*path, key)
        is_speed = here[:2] in speed or here[:1] in speed
        if "properties" in child and "null" not in _kinds(child):
            if child.get("description"):  # the mapping itself, then its keys
                rows.append([f"`{'.'.join(here[1:])}`", "mapping (keys below)", "",
                             _cell(child["description"])])
            sub = child.get("default") if isinstance(child.get("default"), Mapping) and child["default"] else default
            rows += _rows(child, schema, here, sub if isinstance(sub, Mapping) else {}, speed, section_speed)
            continue
        description = _cell(child.get("description", ""))
        if is_speed and not section_speed:
            description = f"{SPEED} {description}".strip()
        shown = "(required)" if default is _NO_DEFAULT else f"`{_inline(default)}`"
        rows.append([f"`{'.'.join(here[1:])}`", _cell(_type(child, schema)), shown, description])
    return rows


def _kinds(node: Mapping) -> list[str]:
    kinds = node.get("type", [])
    return [kinds] if isinstance(kinds, str) else list(kinds)


def key_tables(schema: Mapping | None = None) -> str:
    """Markdown: one section per top-level key of the schema (its description, then a table of
    its keys: type, default, description; speed knobs marked)."""
    from symflow.jobs import SPEED_KNOBS

    if schema is None:
        from symflow.configuration import load_schema

        schema = load_schema()
    speed = {(s,) if k is None else (s, k) for s, k in SPEED_KNOBS}
    out = []
    for key, node in schema["properties"].items():
        node = _resolve(node, schema)
        out.append(f"### `{key}`\n")
        description = _cell(node.get("description", ""))
        if (key,) in speed:
            description = f"{SPEED} {description} Every key of this section is one.".strip()
        if "properties" in node:
            if "null" in _kinds(node):
                description += f" Default `{_inline(node.get('default'))}` (off); given as a mapping, its keys are:"
            out.append(f"{description}\n")
            out.append("| key | type | default | description |\n|---|---|---|---|")
            rows = _rows(node, schema, (key,), {}, speed, section_speed=(key,) in speed)
            out += ["| " + " | ".join(row) + " |" for row in rows]
        else:
            out.append(f"{description}\n")
            out.append(f"Type: {_cell(_type(node, schema))}. Default: `{_inline(node.get('default'))}`.")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def render(readme: str, schema: Mapping | None = None) -> str:
    """`readme` with everything after MARKER replaced by :func:`key_tables`."""
    if MARKER not in readme:
        raise ValueError(f"no generated part: the line {MARKER!r} is missing")
    head = readme.split(MARKER, 1)[0]
    return f"{head}{MARKER}\n\n{key_tables(schema)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m symflow.config_docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("readme", type=Path, help="the README to update (config/README.md)")
    parser.add_argument("--check", action="store_true", help="only check: exit status 1 if it is out of step")
    args = parser.parse_args(argv)
    try:
        text = args.readme.read_text()
        new = render(text)
    except (OSError, ValueError) as exc:
        print(f"config_docs: {args.readme}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if new != text:
            print(f"{args.readme} is out of step with the schema: run python -m symflow.config_docs {args.readme}",
                  file=sys.stderr)
            return 1
        return 0
    if new != text:
        args.readme.write_text(new)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

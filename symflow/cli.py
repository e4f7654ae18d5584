"""The `symflow` command: what a user does outside Snakemake.

    symflow list                       registered transform groups and architectures
    symflow check [CONFIG ...]         validate a config (merged left to right), one line per problem
    symflow verify-cache [DIR ...]     check every cached artifact's and checkpoint's checksum;
                                       --remove deletes bad ones (then rerun the workflow)
    symflow plan [--configfile F ...]  jobs per stage, estimated GPU/CPU-hours and disk of the default target
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _load_configs(paths: list[str]) -> dict:
    import yaml

    merged: dict = {}

    def merge(a: dict, b: dict) -> dict:
        for k, v in b.items():
            if isinstance(v, dict) and isinstance(a.get(k), dict):
                merge(a[k], v)
            else:
                a[k] = v
        return a

    for p in paths:
        with open(p) as fh:
            merge(merged, yaml.safe_load(fh) or {})
    return merged


def cmd_list(args: argparse.Namespace) -> int:
    from symflow.architectures import ARCHITECTURES
    from symflow.groups import GROUPS
    from symflow.registry import load_plugins

    load_plugins(args.plugin or [])
    print("transform groups:")
    for g in GROUPS:
        kind = " (path: give t)" if g.path else ""
        sub = f" [subgroup of {', '.join(g.subgroup_of)}]" if g.subgroup_of else ""
        print(f"  {g.name:<12} {g.description}{kind}{sub}")
    print("architectures (claimed invariances, Thm 4.1):")
    names = [g.name for g in GROUPS if g.random]
    for a in ARCHITECTURES:
        inf = ", ".join(g for g in names if a.claims(g)) or "-"
        fin = ", ".join(g for g in names if a.claims(g, infinite=False)) or "-"
        print(f"  {a.name:<6} {a.description}")
        print(f"         infinite width: {inf}")
        print(f"         finite width:   {fin}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from symflow.configuration import ConfigError, dataset_id, validate

    paths = args.config or ["config.yaml"]
    try:
        cfg = validate(_load_configs(paths))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    print(f"ok: {', '.join(paths)} (dataset {dataset_id(cfg['data'])})")
    return 0


def cmd_verify_cache(args: argparse.Namespace) -> int:
    from symflow.h5io import CorruptArtifactError, verify_h5
    from symflow.train import checkpoint_payload

    roots = [Path(d) for d in (args.dirs or ["results", "checkpoints"])]
    checked, bad, stale = 0, [], []
    for root in roots:
        if not root.exists():
            continue
        for path in sorted(root.rglob("*")):
            if not path.is_file():
                continue
            if path.name.startswith(".") and ".tmp" in path.name:
                stale.append(path)  # left by a job killed while writing
                continue
            if path.suffix not in (".h5", ".msgpack"):
                continue
            checked += 1
            try:
                if path.suffix == ".h5":
                    verify_h5(path)
                else:  # a training checkpoint (checkpoints/sgd/.../state.msgpack)
                    checkpoint_payload(path)
            except (CorruptArtifactError, OSError, ValueError) as exc:
                bad.append((path, str(exc)))
    for path, why in bad:
        print(f"corrupt: {why}")
    for path in stale:
        print(f"stale temporary file: {path}")
    if args.remove:
        for path in [p for p, _ in bad] + stale:
            path.unlink()
        if bad or stale:
            print(f"removed {len(bad) + len(stale)} file(s); rerun the workflow to regenerate them")
    print(f"checked {checked} artifact(s): {len(bad)} corrupt, {len(stale)} stale temporary file(s)")
    return 1 if bad and not args.remove else 0


def cmd_plan(args: argparse.Namespace) -> int:
    """Jobs, compute hours and disk of the default target, before anything runs (symflow.plan)."""
    from symflow.configuration import ConfigError, dataset_id, validate
    from symflow.plan import format_plan, plan

    # as Snakemake reads them: the Snakefile's config.yaml, then each --configfile over it
    paths = ([] if args.no_default else ["config.yaml"]) + (args.configfile or [])
    try:
        cfg = validate(_load_configs(paths))
    except (ConfigError, OSError, ValueError) as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    print(f"plan of the default target for {' + '.join(paths)} (dataset {dataset_id(cfg['data'])}), from scratch:")
    print(format_plan(plan(cfg), rules=not args.stages))
    return 0


def _add_plan(sub) -> None:
    p = sub.add_parser("plan", help="jobs per stage, GPU/CPU-hours and disk the default target needs")
    p.add_argument("--configfile", nargs="+", metavar="FILE", help="merged over config.yaml, as snakemake's")
    p.add_argument("--no-default", action="store_true", help="do not start from config.yaml")
    p.add_argument("--stages", action="store_true", help="one line per stage (no per-rule lines)")
    p.set_defaults(func=cmd_plan)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="symflow", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list registered transform groups and architectures")
    p.add_argument("--plugin", action="append", help="import this plug-in module first (repeatable)")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("check", help="validate config files (merged left to right)")
    p.add_argument("config", nargs="*", help="config files (default: config.yaml)")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("verify-cache", help="verify cached artifacts' checksums (and remove bad ones)")
    p.add_argument("dirs", nargs="*", help="folders to scan (default: results checkpoints)")
    p.add_argument("--remove", action="store_true", help="delete corrupt artifacts and stale temporary files")
    p.set_defaults(func=cmd_verify_cache)
    _add_plan(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

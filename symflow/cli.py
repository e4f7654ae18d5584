"""The `symflow` command: what a user does outside Snakemake.

    symflow list                       registered transform groups and architectures
    symflow check [CONFIG ...]         validate config/config.yaml with each CONFIG merged over it, as
                                       snakemake --configfile does (--standalone: the files alone)
    symflow verify-cache [DIR ...]     check every cached artifact's and checkpoint's checksum;
                                       --remove deletes bad ones (then rerun the workflow)
    symflow plan [--configfile F ...]  jobs per stage, estimated GPU/CPU-hours and disk of the default target

check and plan read a config as Snakemake does: ./config/config.yaml (the Snakefile's configfile;
outside a checkout, the schema's defaults, which are its values), then each file merged over
it, mapping by mapping; --standalone starts from the schema's defaults instead.
    symflow audit ARCH GROUP           Thm 4.1 on real images: is ARCH's kernel invariant to GROUP?
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


# the Snakefile's configfile, relative to the working directory as Snakemake reads it
DEFAULT_CONFIG = "config/config.yaml"
EMBEDDED = "the embedded default (the schema's defaults: no ./config/config.yaml here)"


def _configs(files: list[str], over_default: bool) -> tuple[dict, str]:
    """The config that `files` (merged left to right) make, and how to name it. With
    `over_default`, they are merged over ./config/config.yaml, as Snakemake merges --configfile
    over the Snakefile's configfile; where the working directory has no config/config.yaml (outside a
    checkout, e.g. after `pip install symflow`), the schema's defaults stand in for it: they
    are config/config.yaml's values."""
    paths = list(files)
    names = []
    if over_default:
        if not Path(DEFAULT_CONFIG).is_file():
            names.append(EMBEDDED)
        elif not (paths and Path(paths[0]).resolve() == Path(DEFAULT_CONFIG).resolve()):
            paths.insert(0, DEFAULT_CONFIG)
    return _load_configs(paths), " + ".join(names + paths)


def _load_configs(paths: list[str]) -> dict:
    import yaml

    from symflow.configuration import merge_config

    merged: dict = {}
    for p in paths:
        with open(p) as fh:
            merge_config(merged, yaml.safe_load(fh) or {})
    return merged


def cmd_list(args: argparse.Namespace) -> int:
    from symflow.architectures import ARCHITECTURES
    from symflow.engine import supports
    from symflow.groups import GROUPS
    from symflow.registry import load_plugins

    from symflow.sources import SOURCES, dataset_stem

    load_plugins(args.plugin or [])
    print("data sources (data.source; the dataset name begins with the second column):")
    for src in SOURCES:
        print(f"  {src.name:<9} {dataset_stem(src.name):<17} {src.description}")
    print("transform groups:")
    for g in GROUPS:
        kind = " (path: give t)" if g.path else ""
        sub = f" [subgroup of {', '.join(g.subgroup_of)}]" if g.subgroup_of else ""
        print(f"  {g.name:<12} {g.description}{kind}{sub}")
    print("architectures (claimed invariances, Thm 4.1):")
    names = [g.name for g in GROUPS if not g.trivial]
    for a in ARCHITECTURES:
        inf = ", ".join(g for g in names if a.claims(g)) or "-"
        fin = ", ".join(g for g in names if a.claims(g, infinite=False)) or "-"
        print(f"  {a.name:<6} {a.description}")
        print(f"         infinite width: {inf}")
        print(f"         finite width:   {fin}")
        if a.same_kernel_as:
            print(f"         same kernel as: {', '.join(a.same_kernel_as)}")
        print(f"         default width:  {a.default_width} (of its finite networks; sgd.widths overrides it)")
        if supports(a.name):
            print(f"         kernels:        symflow's engine ({a.engine_recursion} recursion) or neural-tangents")
        else:
            print("         kernels:        neural-tangents only (symflow's engine cannot compute it)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from symflow.configuration import ConfigError, validate
    from symflow.data import DataError
    from symflow.jobs import Jobs

    if args.standalone and not args.config:
        print("symflow check: --standalone checks the CONFIG files on their own; name at least one", file=sys.stderr)
        return 2
    try:
        cfg, name = _configs(args.config, over_default=not args.standalone)
        cfg = validate(cfg)
        dataset = Jobs(cfg).dataset
    except (ConfigError, DataError, OSError, ValueError) as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    print(f"ok: {name}{' (standalone)' if args.standalone else ''} (dataset {dataset})")
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
    from symflow.configuration import ConfigError, validate
    from symflow.data import DataError
    from symflow.jobs import Jobs
    from symflow.plan import format_plan, plan

    # as Snakemake reads them: the Snakefile's config/config.yaml, then each --configfile over it
    try:
        cfg, name = _configs(args.configfile or [], over_default=not args.standalone)
        cfg = validate(cfg)
        dataset = Jobs(cfg).dataset
    except (ConfigError, DataError, OSError, ValueError) as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    name = name or "the schema's defaults"
    print(f"plan of the default target for {name} (dataset {dataset}), from scratch:")
    print(format_plan(plan(cfg), rules=not args.stages))
    return 0


def _add_plan(sub) -> None:
    p = sub.add_parser("plan", help="jobs per stage, GPU/CPU-hours and disk the default target needs")
    p.add_argument("--configfile", nargs="+", metavar="FILE", help="merged over config/config.yaml, as snakemake's")
    p.add_argument(
        "--standalone",
        "--no-default",
        dest="standalone",
        action="store_true",
        help="the --configfile files on their own, over the schema's defaults (not over config/config.yaml)",
    )
    p.add_argument("--stages", action="store_true", help="one line per stage (no per-rule lines)")
    p.set_defaults(func=cmd_plan)


def cmd_audit(args: argparse.Namespace) -> int:
    """Audit one (architecture, group) on real images from the shipped sample; exit 1 if it refutes the claim."""
    import jax

    # the audit compares float64 kernels; restore the caller's precision afterwards (main() may
    # run inside a longer-lived process, e.g. the tests, whose float32 models must stay float32)
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        return _audit(args)
    finally:
        jax.config.update("jax_enable_x64", old)


def _audit(args: argparse.Namespace) -> int:
    from symflow.architectures import ARCHITECTURES, ModelHP
    from symflow.audit import audit_arrays, available_backends
    from symflow.data import SAMPLE_DIR, DataError, sample_images
    from symflow.groups import GROUPS, parse_spec, transform_images
    from symflow.registry import UnknownNameError, load_plugins

    try:
        load_plugins(args.plugin or [])
        arch = ARCHITECTURES.get(args.arch)
        spec = parse_spec(args.group)
        arch.check_resolution(args.resolution)
    except (ImportError, UnknownNameError, ValueError) as exc:
        print(f"symflow audit: {exc}", file=sys.stderr)
        return 2
    hp = ModelHP(depth=args.depth)
    backends = available_backends(arch.name) if args.backend == "all" else [args.backend]
    if args.source == "sample":
        x, what = sample_images(args.n, args.resolution, args.sample_dir or SAMPLE_DIR), "CIFAR-10 sample"
    else:  # another data source's real images (the digits, a folder: --folder)
        try:
            x, what = _source_images(args), f"{args.source} source"
        except (DataError, UnknownNameError, ValueError) as exc:
            print(f"symflow audit: {exc}", file=sys.stderr)
            return 2
    try:  # the channel count is the data's: a group may refuse it (so3_path needs 3 channels)
        x_tau = transform_images(spec, args.seed, x)
    except ValueError as exc:
        print(f"symflow audit: {exc}", file=sys.stderr)
        return 2
    row = audit_arrays(arch.name, spec.id, x, x_tau, hp=hp, tolerance=args.tolerance, backends=backends)
    claim = "invariant" if row["claimed_invariant"] else "not claimed invariant"
    print(
        f"{arch.name} on {spec.id} (seed {args.seed}): {args.n} {what} images at "
        f"{args.resolution}x{args.resolution}, {hp.tag}, float64, backends {row['backends']}"
    )
    print(f"  group:    {GROUPS.get(spec.group).description}")
    print(f"  claim:    {claim} (Thm 4.1, as the registry states it)")
    print(
        f"  max relative difference  NNGP {row['max_rel_diff_nngp']:.3g}  NTK {row['max_rel_diff_ntk']:.3g}"
        f"  (tolerance {args.tolerance:g})"
    )
    print(f"  verdict:  {row['verdict']}")
    return 1 if row["verdict"] == "refutes" else 0


def _source_images(args: argparse.Namespace):
    """args.n training images of source args.source prepared as the data stage does (the first n
    of the split by split seed 0, standardised with their own statistics, R x R)."""
    from symflow.data import prepare_splits
    from symflow.sources import SOURCES

    source = SOURCES.get(args.source)
    images = source.load(source.location({"folder": args.folder, "source": args.source}), args.resolution)
    held = 0 if len(images.y_test) else 1  # a folder without test images: its one test image is held out
    return prepare_splits(images, args.n, 0, 1, args.resolution, 0, test_holdout=held).x_train


def add_audit_parser(sub) -> None:
    p = sub.add_parser(
        "audit",
        help="check one architecture's claimed invariance to one group on real images",
        description=(
            "Compute ARCH's infinite-width NNGP and NTK (float64) on N real CIFAR-10 images from the "
            "shipped sample (or another data source's: --source) and on the same images transformed by "
            "one element of GROUP (drawn from --seed); print the max relative differences, the registry's claim and the verdict. "
            "Exit status 1 if the measurement refutes the claim, 2 for a bad name."
        ),
    )
    p.add_argument("arch", help="architecture name (see `symflow list`)")
    p.add_argument("group", help="transform group, or NAME-t<t> for a path group (e.g. so3_path-t0.5)")
    p.add_argument("--n", type=int, default=8, help="images (default 8)")
    p.add_argument("--resolution", type=int, default=8, choices=[1, 2, 4, 8, 16, 32], help="R x R (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the group element tau (default 0)")
    p.add_argument("--depth", type=int, default=8, help="hidden layers (default 8, the paper's)")
    p.add_argument("--tolerance", type=float, default=1e-6, help="max relative difference counted invariant")
    p.add_argument(
        "--backend",
        choices=["all", "nt", "engine"],
        default="all",
        help="kernel backend(s): all = nt, and the engine where it supports ARCH (default)",
    )
    p.add_argument("--sample-dir", help="CIFAR-10 folder (default: the sample shipped in the package)")
    p.add_argument("--source", default="sample",
                   help="data source of the images (`symflow list`; default sample: CIFAR-10): e.g. digits")
    p.add_argument("--folder", help="the folder source's images (one subfolder per class)")
    p.add_argument("--plugin", action="append", help="import this plug-in module first (repeatable)")
    p.set_defaults(func=cmd_audit)


def _shown_path(path: Path) -> str:
    """`path` as a reader of its repository names it: relative to the nearest folder above it
    that holds `.git` (docs/default-run.md, wherever the command ran), else as given."""
    resolved = path.resolve()
    for folder in resolved.parents:
        if (folder / ".git").exists():
            return resolved.relative_to(folder).as_posix()
    return path.as_posix()


def cmd_claims(args: argparse.Namespace) -> int:
    from symflow.claims import evaluate_results, format_table

    results = Path(args.results)
    if not results.is_dir():
        print(f"symflow claims: no results folder {results}", file=sys.stderr)
        return 2
    frame = evaluate_results(results)
    if args.readme:
        import datetime

        from symflow.claims import write_readme_block

        header = (f"Verdicts of `{results}` ({_commits_line(results)}; `symflow claims {results} --readme "
                  f"{_shown_path(Path(args.readme))}`, {datetime.date.today().isoformat()}):")
        write_readme_block(args.readme, frame, header)
        print(f"wrote the claims table of {results} into {args.readme}")
    elif args.markdown:
        from symflow.claims import markdown_table

        print(markdown_table(frame))
    elif args.csv:
        frame.to_csv(sys.stdout, index=False)
    else:
        print(format_table(frame))
    return 0


def _commits_line(results: Path) -> str:
    """Which symflow computed the runs of a results folder (runs.csv's provenance columns)."""
    import pandas as pd

    runs = results / "tables" / "runs.csv"
    if not runs.is_file():
        return "no runs.csv"
    frame = pd.read_csv(runs, dtype=str)
    if "symflow_commit" not in frame:
        return f"{len(frame)} runs"
    commits = frame["symflow_commit"].fillna("").value_counts()
    top = ", ".join(f"{c[:12] or 'unknown'} ({n})" for c, n in commits.items())
    return f"{len(frame)} runs by symflow commit {top}"


def cmd_training(args: argparse.Namespace) -> int:
    from symflow.figures.table import load_runs, training_summary

    runs = Path(args.results) / "tables" / "runs.csv"
    if not runs.is_file():
        print(f"symflow training: no {runs} (build it with: snakemake results/tables/runs.csv)", file=sys.stderr)
        return 2
    table = training_summary(load_runs(runs))
    if args.csv:
        table.to_csv(sys.stdout, index=False, float_format="%.4g")
    elif table.empty:
        print(f"{runs}: no finite-network runs")
    else:
        print(table.to_markdown(index=False, floatfmt=".4g") if _has_tabulate() else table.to_string(index=False))
    return 0


def _has_tabulate() -> bool:
    import importlib.util

    return importlib.util.find_spec("tabulate") is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="symflow", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list registered data sources, transform groups and architectures")
    p.add_argument("--plugin", action="append", help="import this plug-in module first (repeatable)")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser(
        "check",
        help="validate config/config.yaml with config files merged over it, as snakemake --configfile does",
        description=(
            "Validate the config Snakemake would run: ./config/config.yaml (outside a checkout, the schema's "
            "defaults, which are its values), then each CONFIG merged over it, mapping by mapping, "
            "as `snakemake --configfile CONFIG ...` and `symflow plan --configfile` read them. Exit "
            "status 2 and one line naming the key for a bad config."
        ),
    )
    p.add_argument("config", nargs="*", help="config files, merged left to right over config/config.yaml")
    p.add_argument(
        "--standalone",
        action="store_true",
        help="check the CONFIG files on their own (merged left to right over the schema's defaults only)",
    )
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("verify-cache", help="verify cached artifacts' checksums (and remove bad ones)")
    p.add_argument("dirs", nargs="*", help="folders to scan (default: results checkpoints)")
    p.add_argument("--remove", action="store_true", help="delete corrupt artifacts and stale temporary files")
    p.set_defaults(func=cmd_verify_cache)
    _add_plan(sub)
    add_audit_parser(sub)
    p = sub.add_parser("claims", help="the paper's claims, each with a verdict on an existing results folder")
    p.add_argument("results", nargs="?", default="results", help="the results folder (default: results)")
    p.add_argument("--csv", action="store_true", help="print the full table as CSV (as results/claims.csv)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown (as in docs/default-run.md)")
    p.add_argument("--readme", metavar="FILE", help="write the Markdown table into FILE's generated claims block")
    p.set_defaults(func=cmd_claims)
    p = sub.add_parser("training", help="finite-network runs of a results folder: converged, failed per reason, epochs")
    p.add_argument("results", nargs="?", default="results", help="the results folder (default: results)")
    p.add_argument("--csv", action="store_true", help="print the table as CSV (as results/tables/training.csv)")
    p.set_defaults(func=cmd_training)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Checking a configuration dict: JSON Schema (defaults filled in), registry names,
cross-field rules. Any problem becomes one :class:`ConfigError` whose message is a
single line naming the key and what is allowed.

symflow does not read config files: the workflow (and the ``symflow`` command)
read YAML and hand the dict here. Rules that depend on the registries (names of
groups and architectures) run after the plug-ins named under ``plugins:`` are
imported, so plug-in names are accepted like the built-in ones.
"""

from __future__ import annotations

import copy
import difflib
import functools
import re
from pathlib import Path
from typing import Any, Callable, Iterable

def _schema_path() -> Path:
    from symflow.package_data import SCHEMA, path

    return path(SCHEMA)


# the config schema, package data (symflow/config.schema.yaml): the Snakefile, `symflow check`
# and `symflow plan` read this one file, in a checkout and in an installed package alike
SCHEMA_PATH = _schema_path()


class ConfigError(ValueError):
    """A configuration problem, as one line that names the key."""


# extra checks registered by modules that own a config section: f(config) -> None, raising ConfigError
_CHECKS: list[Callable[[dict], None]] = []


def register_check(fn: Callable[[dict], None]) -> Callable[[dict], None]:
    _CHECKS.append(fn)
    return fn


def load_schema(path: str | Path | None = None) -> dict:
    return copy.deepcopy(_load_schema(str(path or SCHEMA_PATH)))


@functools.lru_cache(maxsize=8)
def _load_schema(path: str) -> dict:
    import yaml

    with open(path) as fh:
        return yaml.safe_load(fh)


def _name(key: Any) -> str:
    """A key as it can be printed on one line (repr() where it holds control characters)."""
    text = str(key)
    return text if text.isprintable() else repr(text)[1:-1]


def _key(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{_name(part)}" if out else _name(part))
    return out or "(top level)"


def _validator_with_defaults(schema: dict):
    import jsonschema

    base = jsonschema.Draft202012Validator

    def set_defaults(validator, properties, instance, schema_):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "$ref" in sub and "default" not in sub:
                    continue
                if "default" in sub and prop not in instance:
                    instance[prop] = copy.deepcopy(sub["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema_)

    cls = jsonschema.validators.extend(base, {"properties": set_defaults})
    return cls(schema)


def _format_error(error, schema: dict) -> str:
    key = _key(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extras = sorted(set(error.instance) - set(allowed))
        bad = extras[0] if extras else "?"
        close = difflib.get_close_matches(bad, allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        where = f" under {key}" if error.absolute_path else ""
        return f"unknown key '{_name(bad)}'{where}{hint}; allowed: {', '.join(allowed)}"
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"{key}: {error.instance!r} is not allowed; allowed: {allowed}"
    if error.validator == "type":
        want = error.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return f"{key}: {error.instance!r} is not of type {want}"
    if error.validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        words = {
            "minimum": ">=",
            "exclusiveMinimum": ">",
            "maximum": "<=",
            "exclusiveMaximum": "<",
        }[error.validator]
        return f"{key}: {error.instance!r} is out of range; must be {words} {error.validator_value}"
    if error.validator == "pattern":
        return f"{key}: {error.instance!r} is not allowed (letters, digits and '_' only)"
    if error.validator in ("minItems", "uniqueItems"):
        what = "must not be empty" if error.validator == "minItems" else "has repeated entries"
        return f"{key}: {what}"
    return f"{key}: {error.message}"


def merge_config(base: dict, override: dict) -> dict:
    """Merge `override` into `base` in place, mapping by mapping, exactly as Snakemake merges
    --configfile (snakemake.utils.update_config): a mapping merges into a mapping; a non-empty
    mapping replaces a value that is not one; an empty mapping leaves such a value alone
    (so `imagenet: {}` over `imagenet: null` stays null, as the Snakefile sees it)."""

    def update(config, over):
        for key, value in over.items():
            if not isinstance(config, dict):
                config = {}
            if isinstance(value, dict):
                config[key] = update(config.get(key, {}), value)
            else:
                config[key] = value
        return config

    return update(base, override)


def validate_schema(config: dict, schema: dict | None = None) -> dict:
    """Fill defaults and check `config` against the schema; returns a new dict."""
    import jsonschema

    schema = schema or load_schema()
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ConfigError(f"the config must be a mapping of keys to values, got {type(config).__name__}")
    config = copy.deepcopy(config)
    validator = _validator_with_defaults(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(_format_error(error, schema))
    # a second pass: defaults inside objects created by the first pass
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(_format_error(error, schema))
    return config


def check_group_names(key: str, names: Iterable[str], allow_path: bool = False) -> None:
    from symflow.groups import GROUPS

    for i, name in enumerate(names):
        if name not in GROUPS:
            raise ConfigError(f"{key}[{i}]: {GROUPS.unknown_message(name)}")
        if GROUPS.get(name).path and not allow_path:
            raise ConfigError(
                f"{key}[{i}]: {name!r} is a path group; its datasets come from its t values (path_t)"
            )


def check_architecture_names(key: str, names: Iterable[str]) -> None:
    from symflow.architectures import ARCHITECTURES

    for i, name in enumerate(names):
        if name not in ARCHITECTURES:
            raise ConfigError(f"{key}[{i}]: {ARCHITECTURES.unknown_message(name)}")


def _check_data(config: dict) -> None:
    from symflow.data import DataError
    from symflow.sources import SOURCES, source_sizes

    data = config["data"]
    if data["source"] not in SOURCES:
        raise ConfigError(f"data.source: {SOURCES.unknown_message(data['source'])}")
    source = SOURCES.get(data["source"])
    try:
        pool, test = source_sizes(data)
    except DataError as exc:
        raise ConfigError(f"data.source {data['source']}: {exc}") from None
    if source.image_size and source.image_size % data["resolution"]:
        raise ConfigError(f"data.resolution: {data['resolution']} must divide the {source.image_size}x"
                          f"{source.image_size} images of source '{data['source']}'")
    if source.channels not in (None, 3) and (config["experiments"]["figS1"]["t"] or config["path_t"]):
        raise ConfigError(f"data.source: '{data['source']}' has {source.channels} channel(s), and Fig. S1 and "
                          "S2's rotation path (so3_path) needs 3: set experiments.figS1.t and path_t to [] (config/digits.yaml does)")
    hold = data["test_holdout"]
    if not test and hold != data["n_test"]:
        raise ConfigError(f"data.test_holdout: {hold} must equal data.n_test = {data['n_test']}: source "
                          f"'{data['source']}' has no test images of its own (a folder without train/ and test/), "
                          "so every test image is a held-out training image")
    if hold >= data["n_test"] and test:
        raise ConfigError(f"data.test_holdout: {hold} must be below data.n_test = {data['n_test']} (the test "
                          "split keeps at least one image of the source's test batch; an overlay that sets "
                          "n_test sets test_holdout too, 0 for the test batch alone)")
    if data["n_train"] + data["n_val"] + hold > pool:
        raise ConfigError(
            f"data.n_train + data.n_val + data.test_holdout = {data['n_train'] + data['n_val'] + hold} exceeds "
            f"the {pool} training images of source '{data['source']}'"
        )
    if data["n_test"] - hold > test:  # a source without test images has hold = n_test
        raise ConfigError(
            f"data.n_test - data.test_holdout: {data['n_test'] - hold} exceeds the {test} test images of "
            f"source '{data['source']}'" + (" (a larger n_test takes more held-out training images: "
                                            "data.test_holdout)" if not hold else "")
        )


def _check_figS2(config: dict) -> None:
    fig = config["figS2"]
    check_group_names("figS2.transforms", fig["transforms"])
    from symflow.sources import SOURCES

    side = SOURCES.get(config["data"]["source"]).image_size
    if fig["resolution"] is not None and side and side % fig["resolution"]:
        raise ConfigError(f"figS2.resolution: {fig['resolution']} must divide {side}")
    if fig["images"] > config["data"]["n_test"]:
        raise ConfigError(f"figS2.images: {fig['images']} exceeds data.n_test = {config['data']['n_test']}")


def _check_experiments(config: dict) -> None:
    from symflow.architectures import ARCHITECTURES

    exps = config["experiments"]
    n_train, res = config["data"]["n_train"], config["data"]["resolution"]
    archs_used = set()
    for fig in ("fig2", "figS5", "figS6"):
        check_architecture_names(f"experiments.{fig}.architectures", exps[fig]["architectures"])
        archs_used.update(exps[fig]["architectures"])
    for fig in ("fig2", "fig3", "figS5", "figS6"):
        check_group_names(f"experiments.{fig}.transforms", exps[fig]["transforms"])
    fig2 = exps["fig2"]
    for recipe, names in (fig2.get("recipe_architectures") or {}).items():
        if names is None:
            continue
        key = f"experiments.fig2.recipe_architectures.{recipe}"
        if recipe not in config["sgd"]["recipes"]:
            raise ConfigError(f"{key}: {recipe!r} is not a recipe of sgd.recipes ({', '.join(config['sgd']['recipes'])})")
        # a recipe that experiments.fig2.recipes leaves out is simply not run (an overlay that runs NN
        # alone need not also clear the default's entry for NN+); architectures not in fig2's are not trained
        check_architecture_names(key, names)
    for arch, transforms in (fig2.get("network_transforms") or {}).items():
        key = f"experiments.fig2.network_transforms.{arch}"
        if arch not in ARCHITECTURES:
            raise ConfigError(f"{key}: {ARCHITECTURES.unknown_message(arch)}")
        if transforms is not None:
            check_group_names(key, transforms)
        # a transform Fig. 2 does not run is simply not trained (an overlay that narrows
        # experiments.fig2.transforms need not also narrow this)
    archs_used.update(["VEC", "LCN", "GAP"])  # fig3, fig4 and figS1 use these
    for name in sorted(archs_used):
        try:
            ARCHITECTURES.get(name).check_resolution(res)
        except ValueError as exc:
            raise ConfigError(f"data.resolution: {res} does not suit architecture {name}: {exc}") from None
    sizes = [("fig2", exps["fig2"]["m"]), ("fig3", exps["fig3"]["m"]), ("figS1", exps["figS1"]["m"]),
             ("figS5", exps["figS5"]["m"])]
    sizes += [("fig4", m) for m in exps["fig4"]["m"]] + [("figS6", m) for m in exps["figS6"]["m"]]
    for fig, m in sizes:
        if m > n_train:
            raise ConfigError(f"experiments.{fig}.m: {m} exceeds data.n_train = {n_train}")


def _check_imagenet(config: dict) -> None:
    """The ImageNet section (when there is one): registered models, transforms with an action on
    the device that fits the image size, a batch that the GPUs of a job divide."""
    inet = config.get("imagenet")
    if inet is None:
        return
    from symflow.imagenet.models import MODELS
    from symflow.imagenet.transforms import DEVICE_ACTIONS, O3D_MAX_DIM

    def transforms(key: str, names) -> None:
        check_group_names(key, names)
        for i, name in enumerate(names):
            if name not in DEVICE_ACTIONS:
                raise ConfigError(f"{key}[{i}]: {name!r} has no action on the device; those that do: "
                                  f"{', '.join(DEVICE_ACTIONS)}")
            if name == "o3d" and 3 * inet["image_size"] ** 2 > O3D_MAX_DIM:
                raise ConfigError(f"{key}[{i}]: o3d at imagenet.image_size {inet['image_size']} would be a "
                                  f"{3 * inet['image_size'] ** 2}^2 matrix (at most {O3D_MAX_DIM}^2)")

    selections = [("fig5.curves", inet["fig5"]["curves"]), ("fig5.depths", inet["fig5"]["depths"]),
                  ("figS3", inet["figS3"]), ("figS4", inet["figS4"])]
    for key, sel in selections:
        for i, name in enumerate(sel["models"]):
            if name not in MODELS:
                raise ConfigError(f"imagenet.{key}.models[{i}]: {MODELS.unknown_message(name)}")
        transforms(f"imagenet.{key}.transforms", sel["transforms"])
    transforms("imagenet.samples.transform", [inet["samples"]["transform"]])
    gpus, batch = inet["resources"]["gpus_per_job"], inet["recipe"]["batch_size"]
    if gpus and batch % gpus:
        raise ConfigError(f"imagenet.recipe.batch_size: {batch} is not a multiple of "
                          f"imagenet.resources.gpus_per_job ({gpus}): the batch is split over the GPUs")


def kernel_sizes(config: dict) -> list[tuple[str, str, int]]:
    """(key, architecture, m) of every kernel regression the experiments ask for."""
    exps = config["experiments"]
    out = []
    for fig in ("fig2",):
        out += [(f"experiments.{fig}.m", a, exps[fig]["m"]) for a in exps[fig]["architectures"]]
    out += [("experiments.figS6.m", a, m) for a in exps["figS6"]["architectures"] for m in exps["figS6"]["m"]]
    out.append(("experiments.fig3.m", "VEC", exps["fig3"]["m"]))
    out.append(("experiments.figS1.m", "VEC", exps["figS1"]["m"]))
    out += [("experiments.fig4.m", "VEC", m) for m in exps["fig4"]["m"]]
    if exps["fig4"]["flip"]:
        out.append(("experiments.fig4.flip", "VEC", 2 * config["data"]["n_train"]))
    return out


def _check_kernels(config: dict) -> None:
    """Block sizes: known architectures, and B divides every m >= B of its architecture."""
    from symflow.architectures import ARCHITECTURES

    kern = config["kernels"]
    for name in kern["block_size"]:
        if name != "default" and name not in ARCHITECTURES:
            raise ConfigError(f"kernels.block_size.{name}: {ARCHITECTURES.unknown_message(name)}")
    for key, arch, m in kernel_sizes(config):
        size = int(kern["block_size"].get(arch, kern["block_size"]["default"]))
        if m >= size and m % size:
            raise ConfigError(f"{key}: {m} is not a multiple of kernels.block_size for {arch} ({size})")
    if kern["audit_size"] > config["data"]["n_train"]:
        raise ConfigError(
            f"kernels.audit_size: {kern['audit_size']} exceeds data.n_train = {config['data']['n_train']}"
        )


def validate(config: dict, schema: dict | None = None) -> dict:
    """The whole check: schema and defaults, plug-ins, registry names, cross-field rules."""
    from symflow.registry import load_plugins

    config = validate_schema(config, schema)
    _locate_sample(config)
    try:
        load_plugins(config["plugins"])
    except ImportError as exc:
        raise ConfigError(f"plugins: {exc}") from None
    for check in [_check_data, _check_figS2, _check_experiments, _check_kernels, _check_imagenet, *_CHECKS]:
        try:
            check(config)
        except ConfigError:
            raise
        except (KeyError, ValueError) as exc:  # a registry or spec error raised inside a check
            raise ConfigError(str(exc).strip("'\"")) from None
    return config


def _locate_sample(config: dict) -> None:
    """data.sample_dir null (the default): the sample shipped inside the package, wherever
    symflow is installed (jobs read this path; the dataset name has the folder's digest)."""
    if config["data"]["sample_dir"] is None:
        from symflow.data import SAMPLE_DIR

        config["data"]["sample_dir"] = str(SAMPLE_DIR)


def validate_or_exit(config: dict, schema_path: str | Path | None = None) -> dict:
    """For the Snakefile: print one line and exit 2 on a bad config (no traceback)."""
    import sys

    try:
        return validate(config, load_schema(schema_path) if schema_path else None)
    except ConfigError as exc:
        sys.stderr.write(f"config error: {exc}\n")
        sys.stderr.flush()
        raise SystemExit(2) from None


def dataset_id(data: dict, digest: str) -> str:
    """The name of a data configuration, in every path that depends on it.

    It spells out everything that determines the data stage's output except the
    transform and seed (which have their own path parts): the source and its identity
    (`digest`, ``symflow.sources.source_digest``: a short digest of the folder's SHA256SUMS,
    or of the official archive's MD5, so data from two folders never share a path), the
    resolution, the train/val/test sizes and the split seed, e.g.
    ``cifar10-sample.1a2b3c4d-r8-n3500.250.1000-split0``. With ``flip`` true (Fig. 4's last
    point) the training split also holds its n_train left-right mirror images, and the
    name ends in ``-flip``. Where some test images are held-out training images
    (``test_holdout``), their number follows the sizes: ``n1000.250.2500h1500``.
    """
    if not re.fullmatch(r"[0-9a-f]{8}", digest or ""):
        raise ValueError(f"a source digest is 8 hex digits, got {digest!r}")
    from symflow.sources import dataset_stem

    return (
        f"{dataset_stem(data['source'])}.{digest}-r{data['resolution']}-"
        f"n{data['n_train']}.{data['n_val']}.{data['n_test']}"
        + (f"h{data['test_holdout']}" if data.get("test_holdout") else "")
        + f"-split{data['split_seed']}"
        + ("-flip" if data.get("flip") else "")
    )


DATASET_ID = re.compile(
    r"(?:cifar10-(?P<source>sample|official)|(?P<other>[A-Za-z0-9_]+))\.(?P<digest>[0-9a-f]{8})-r(?P<resolution>\d+)-"
    r"n(?P<n_train>\d+)\.(?P<n_val>\d+)\.(?P<n_test>\d+)(?:h(?P<test_holdout>\d+))?-split(?P<split_seed>\d+)"
    r"(?P<flip>-flip)?"
)


def parse_dataset_id(name: str) -> dict:
    """The inverse of :func:`dataset_id`: the data settings a dataset name stands for (and
    `digest`, the source's identity)."""
    match = DATASET_ID.fullmatch(name)
    if not match:
        raise ValueError(
            f"{name!r} is not a dataset name such as cifar10-sample.1a2b3c4d-r8-n3500.250.1000-split0"
        )
    groups = match.groupdict()
    groups["source"] = groups["source"] or groups["other"]  # CIFAR-10's names say cifar10-<source>
    out: dict = {
        k: (v if k in ("source", "digest") else bool(v) if k == "flip" else int(v))
        for k, v in groups.items()
        if k != "other" and (k != "test_holdout" or v)  # present only where the name has it: older names keep theirs
    }
    return out

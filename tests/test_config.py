"""Bad configs fail before any job runs, with one line naming the key; good ones validate."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml

import symflow
from conftest import CONFIG, REPO, snakemake_cmd
from symflow.configuration import ConfigError, dataset_id, load_schema, parse_dataset_id, validate

# (name, override merged into config/config.yaml, words the one-line message must contain)
BAD = [
    ("typo in a key", {"data": {"n_trian": 100}}, ["unknown key 'n_trian'", "did you mean 'n_train'"]),
    ("typo at the top", {"experimnts": {}}, ["unknown key 'experimnts'", "experiments"]),
    ("wrong type", {"data": {"n_train": "many"}}, ["data.n_train", "not of type integer"]),
    ("negative size", {"data": {"n_test": -5}}, ["data.n_test", "must be >= 1"]),
    ("unknown transform", {"experiments": {"fig2": {"transforms": ["identity", "o3_pixels"]}}},
     ["experiments.fig2.transforms[1]", "unknown transform group 'o3_pixels'", "did you mean 'o3_pixel'"]),
    ("unknown architecture", {"experiments": {"fig2": {"architectures": ["VEC", "ResNet"]}}},
     ["experiments.fig2.architectures[1]", "unknown architecture 'ResNet'", "registered: FCN"]),
    ("m larger than the data", {"experiments": {"fig4": {"m": [500, 9000]}}},
     ["experiments.fig4.m", "9000 exceeds data.n_train"]),
    ("resolution not allowed", {"data": {"resolution": 12}}, ["data.resolution", "12 is not allowed", "8, 16, 32"]),
    ("resolution too small for LAP8", {"data": {"resolution": 4}, "experiments": {"fig2": {"architectures": ["GAP", "LAP8"]}}},
     ["data.resolution", "LAP8"]),
    ("split larger than the pool", {"data": {"n_train": 4000, "n_val": 500, "test_holdout": 0}},
     ["data.n_train + data.n_val + data.test_holdout = 4500 exceeds the 4068 training images"]),
    ("holdout beyond the pool", {"data": {"n_train": 3000}},
     ["data.n_train + data.n_val + data.test_holdout = 4750 exceeds the 4068 training images"]),
    ("test set larger than the source", {"data": {"n_test": 2000, "test_holdout": 0}},
     ["data.n_test - data.test_holdout", "1017 test images", "data.test_holdout"]),
    ("holdout not below n_test", {"data": {"n_test": 100}}, ["data.test_holdout: 1500", "n_test = 100", "sets test_holdout"]),
    ("unknown source", {"data": {"source": "imagenet"}}, ["data.source", "sample, official"]),
    ("plug-in that does not import", {"plugins": ["no_such_module_xyz"]}, ["plugins", "no_such_module_xyz"]),
    ("path group listed as a transform", {"experiments": {"fig2": {"transforms": ["so3_path"]}}},
     ["so3_path", "path group"]),
    ("empty list", {"experiments": {"fig2": {"seeds": []}}}, ["experiments.fig2.seeds", "must not be empty"]),
    ("t outside [0, 1]", {"path_t": [0.0, 1.5]}, ["path_t[1]", "<= 1"]),
    ("unknown recipe", {"experiments": {"fig3": {"recipes": ["sgd"]}}}, ["experiments.fig3.recipes[0]", "nn, nn_plus"]),
    ("negative seed", {"experiments": {"fig2": {"seeds": [-1]}}}, ["experiments.fig2.seeds[0]", ">= 0"]),
    ("not a mapping", {"data": [1, 2]}, ["data", "not of type object"]),
    ("bad kernel dtype", {"kernels": {"dtype": "float16"}}, ["kernels.dtype", "float32, float64"]),
    ("unknown ImageNet model", {"imagenet": {"fig5": {"curves": {"models": ["ResNet101", "ResNet99"]}}}},
     ["imagenet.fig5.curves.models[1]", "unknown ImageNet model 'ResNet99'", "ResNet101"]),
    ("typo under imagenet", {"imagenet": {"recipe": {"epoch": 10}}},
     ["unknown key 'epoch' under imagenet.recipe", "did you mean 'epochs'"]),
    ("ImageNet batch not split over the GPUs", {"imagenet": {"recipe": {"batch_size": 1000},
                                                             "resources": {"gpus_per_job": 16}}},
     ["imagenet.recipe.batch_size", "not a multiple", "gpus_per_job (16)"]),
    ("O(3d) on ImageNet-sized images", {"imagenet": {"figS4": {"transforms": ["identity", "o3d"]}}},
     ["imagenet.figS4.transforms[1]", "o3d at imagenet.image_size 224"]),
]


def merged(override):
    from symflow.configuration import merge_config

    base = yaml.safe_load(CONFIG.read_text())
    return merge_config(base, override)


@pytest.mark.parametrize("name,override,words", BAD, ids=[b[0] for b in BAD])
def test_bad_config_message(name, override, words):
    with pytest.raises(ConfigError) as info:
        validate(merged(override))
    msg = str(info.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, f"{name}: {w!r} not in {msg!r}"


# A third of the cases again through snakemake itself: one line on stderr, exit 2, fast.
@pytest.mark.parametrize("name,override,words", BAD[::3], ids=[b[0] for b in BAD[::3]])
def test_bad_config_through_snakemake(tmp_path, name, override, words):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(override))
    start = time.perf_counter()
    proc = subprocess.run(
        snakemake_cmd() + ["-n", "--configfile", str(bad)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    elapsed = time.perf_counter() - start
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("config error:")]
    assert len(errors) == 1, lines
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    for w in words:
        assert w in errors[0]
    print(f"{name}: {elapsed:.2f} s")


def test_default_and_tiny_configs_validate():
    cfg = validate(yaml.safe_load(CONFIG.read_text()))
    assert cfg["data"]["source"] == "sample"
    tiny = merged(yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text()))
    validate(tiny)


def test_imagenet_is_off_by_default_and_its_config_validates():
    assert validate({})["imagenet"] is None
    cfg = validate(merged(yaml.safe_load((REPO / "config" / "imagenet.yaml").read_text())))
    inet = cfg["imagenet"]
    assert inet["train_images"] == 1_281_167 and inet["recipe"]["epochs"] == 150 and inet["image_size"] == 224
    assert inet["fig5"]["curves"]["models"] == ["ResNet101", "MixerS16"]
    # a bare section takes the schema's defaults: the paper's settings
    bare = validate({"imagenet": {}})["imagenet"]
    assert {k: bare[k] for k in ("recipe", "fig5", "figS3", "figS4", "subsets")} == {
        k: inet[k] for k in ("recipe", "fig5", "figS3", "figS4", "subsets")}


def test_defaults_fill_an_empty_config():
    cfg = validate({})
    assert cfg["model"] == {"depth": 8, "weight_variance": 2.0, "bias_variance": 0.01, "filter_size": 3}
    assert cfg["sgd"]["batch_size"] == 40 and cfg["sgd"]["momentum"] == 0.9
    assert cfg["sgd"]["recipes"]["nn_plus"] == {"lr_factor": 8.0, "l2": 1e-7}


def test_the_schema_defaults_are_the_embedded_default():
    """config/config.yaml restates the schema's defaults, so a key a config leaves out (a deployed
    module's config, `symflow check --standalone`, `symflow plan` outside a checkout) means
    what config/config.yaml says."""
    assert validate({}) == validate(yaml.safe_load(CONFIG.read_text()))


def test_default_widths_live_in_the_registry():
    from symflow.architectures import ARCHITECTURES
    from symflow.jobs import Jobs

    paper = ("FCN", "LCN", "VEC", "GAP", "LAP4", "LAP8")  # (a test may have registered plug-ins)
    assert validate({})["sgd"]["widths"] == {}  # neither the schema nor config/config.yaml restates them
    assert yaml.safe_load(CONFIG.read_text())["sgd"]["widths"] == {}
    jobs = Jobs(validate({}))
    widths = {a: jobs.width(a) for a in paper}
    assert widths == {a: ARCHITECTURES.get(a).default_width for a in paper}
    assert widths == {"FCN": 256, "LCN": 8, "VEC": 32, "GAP": 32, "LAP4": 32, "LAP8": 32}
    # a config names some; the rest keep the registry's
    some = Jobs(validate({"sgd": {"widths": {"VEC": 16}}}))
    assert {a: some.width(a) for a in paper} == {**widths, "VEC": 16}


def test_the_sample_is_package_data():
    from symflow.data import SAMPLE_DIR, load_cifar10
    from symflow.package_data import CIFAR10_SAMPLE, path

    assert validate({})["data"]["sample_dir"] == str(SAMPLE_DIR) == str(path(CIFAR10_SAMPLE))
    assert SAMPLE_DIR.parent == Path(symflow.__file__).parent  # inside the package, wherever installed
    assert load_cifar10(SAMPLE_DIR).x_train.shape == (4068, 32, 32, 3)


def test_every_schema_key_has_a_description_and_a_default():
    schema = load_schema()
    missing = []

    def walk(node, path, top=False, inherited=None):
        for key, sub in node.get("properties", {}).items():
            where = f"{path}.{key}" if path else key
            resolved = sub
            if "$ref" in sub:
                resolved = {**schema["$defs"][sub["$ref"].split("/")[-1]], **sub}
            if "description" not in resolved:
                missing.append(f"{where}: description")
            if "default" not in resolved and key not in (inherited or {}):
                missing.append(f"{where}: default")  # (a key its parent's default sets counts)
            kind = resolved.get("type")
            if kind == "object" or (isinstance(kind, list) and "object" in kind):  # imagenet: object or null
                walk(resolved, where, inherited=resolved.get("default"))

    walk(schema, "", top=True)
    assert not missing, missing


def test_dataset_id_round_trip():
    data = validate({})["data"]
    name = dataset_id(data, "0e454ec3")
    assert name == "cifar10-sample.0e454ec3-r8-n1000.250.2500h1500-split0"
    back = parse_dataset_id(name)
    assert back.pop("flip") is False and back.pop("digest") == "0e454ec3"
    assert {k: data[k] for k in back} == back
    flipped = dataset_id({**data, "flip": True}, "0e454ec3")
    assert flipped == name + "-flip" and parse_dataset_id(flipped)["flip"] is True
    with pytest.raises(ValueError, match="8 hex digits"):
        dataset_id(data, "")
    # without held-out images the name (and the settings it stands for) are as before the key existed
    plain = dataset_id({**data, "n_train": 3500, "n_test": 1000, "test_holdout": 0}, "0e454ec3")
    assert plain == "cifar10-sample.0e454ec3-r8-n3500.250.1000-split0"
    assert "test_holdout" not in parse_dataset_id(plain)


def test_dataset_name_names_its_source(tmp_path, sample_dir):
    """Two folders with different content never share a dataset name; a copy of the same
    folder (same SHA256SUMS) gives the same name; the official source is named by its MD5."""
    import shutil

    from symflow.data import ARCHIVE_MD5, DataError
    from symflow.sources import source_digest

    copy = tmp_path / "copy"
    shutil.copytree(sample_dir, copy)
    data = validate({})["data"]
    shipped = source_digest({**data, "sample_dir": str(sample_dir)})
    assert source_digest({**data, "sample_dir": str(copy)}) == shipped
    other = tmp_path / "other"
    shutil.copytree(sample_dir, other)
    sums = (other / "SHA256SUMS").read_text().splitlines()
    (other / "SHA256SUMS").write_text("\n".join(sums[:-1]) + "\n")  # a folder that differs
    assert source_digest({**data, "sample_dir": str(other)}) != shipped
    assert source_digest({**data, "source": "official"}) == ARCHIVE_MD5[:8]
    with pytest.raises(DataError, match="SHA256SUMS"):
        source_digest({**data, "sample_dir": str(tmp_path / "nowhere")})

# Config validation (before any job), wildcard constraints, input functions.
import sys
from pathlib import Path

REPO = Path(workflow.basedir)
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from symflow.configuration import dataset_id, parse_dataset_id, validate_or_exit
from symflow.groups import GROUPS, spec_id

# one line on stderr and exit status 2 for a bad config; defaults filled in
config = validate_or_exit(config, REPO / "workflow" / "schemas" / "config.schema.yaml")

DATA = config["data"]
DATASET = dataset_id(DATA)
# Fig. S2 shows its images at their own resolution: a second (cheap) data configuration
FIGS2_DATASET = dataset_id({**DATA, "resolution": config["figS2"]["resolution"] or DATA["resolution"]})
DATASETS = sorted({DATASET, FIGS2_DATASET})
SOURCE_DIR = (
    DATA["sample_dir"]
    if DATA["source"] == "sample"
    else f"{DATA['official_dir']}/cifar-10-batches-py"
)
CONDA_ENV = "../../envs/symflow-cpu.yaml"


def _alternatives(names):
    return "|".join(sorted(names, key=len, reverse=True))


_plain = [g.name for g in GROUPS if not g.path]
_paths = [g.name for g in GROUPS if g.path]
TRANSFORM_RE = f"(?:{_alternatives(_plain)})" + (
    f"|(?:{_alternatives(_paths)})-t\\d+(?:\\.\\d+)?" if _paths else ""
)


wildcard_constraints:
    dataset="|".join(d.replace(".", "\\.") for d in DATASETS),
    transform=TRANSFORM_RE,
    seed=r"\d+",


def data_file(transform, seed, dataset=DATASET):
    return f"results/data/{dataset}/{transform}/s{seed}.h5"


def dataset_params(wildcards):
    """The data settings that a dataset name stands for (the path names them all)."""
    return parse_dataset_id(wildcards.dataset)


def figS2_transforms():
    fig = config["figS2"]
    return list(fig["transforms"]) + [spec_id("so3_path", t) for t in config["path_t"]]


def all_targets():
    return ["results/figS2.pdf", "results/figS2.png"]

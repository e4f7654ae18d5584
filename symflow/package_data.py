"""Files that ship inside the symflow package, found through importlib.resources, so that a
checkout, an editable install and a plain ``pip install`` read the same ones:

    config.schema.yaml     the config schema (every key, its default and description)
    claims.yaml            the paper's claims as data (symflow.claims)
    paper_values.csv       the values the paper states in its text (figures, report)
    cifar-10-sample/       the real CIFAR-10 sample of the default config (15 MB, offline)
    digits/                scikit-learn's 8x8 digits (57 kB, its licence and source beside it)

symflow is installed as files on disk (not from a zip): jobs hand these paths to Snakemake
and to h5py, so each is returned as a real path.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SCHEMA = "config.schema.yaml"
CLAIMS = "claims.yaml"
PAPER_VALUES = "paper_values.csv"
CIFAR10_SAMPLE = "cifar-10-sample"
DIGITS = "digits"


def path(name: str) -> Path:
    """The path of the packaged file or folder `name`."""
    found = resources.files("symflow").joinpath(name)
    if not isinstance(found, Path):  # a zipped install: not supported
        raise RuntimeError(f"symflow's package data {name!r} is not on disk ({found!r}); install symflow unzipped")
    if not found.exists():
        raise FileNotFoundError(f"{found}: missing from the symflow package (a broken install? reinstall symflow)")
    return found

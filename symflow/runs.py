"""The record of one finite-network training run: what names it, in one place.

The job model (``symflow.jobs.Run`` is this record plus its rule's paths and costs), the
training code (``symflow.train.run_sgd`` takes it with the run's :class:`TrainConfig`),
the outputs (the checkpoint's fingerprint, the attributes of ``predictions.h5``, the
metrics row) and the tables all read the same fields. Their names are the workflow's
wildcards and the config's words: ``arch`` is a key of the architecture registry,
``recipe`` a key of the config's ``sgd.recipes``. The tables of results, which hold kernels
too, name them ``architecture`` and ``inference`` (ntk, nngp, or a recipe):
:data:`TABLE_COLUMNS` says so, once.

Light: no JAX, no config read; ``symflow.jobs`` imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

# record field -> the column of runs.csv (symflow.results.RUN_COLUMNS) that holds it, where
# the two differ: the tables' words cover kernels as well as networks
TABLE_COLUMNS = {"arch": "architecture", "recipe": "inference"}


@dataclass(frozen=True)
class TrainingRun:
    """One SGD run: the dataset (its name, symflow.configuration.dataset_id), the network
    (``arch`` at ``width``, first layer ``init``, ``hp`` the ModelHP tag), the data's
    transform spec, the recipe (nn, nn_plus, ...), the training-set size ``m``, the seed
    (tau and, with ``member``, the initialisation) and the ensemble member."""

    dataset: str
    arch: str
    width: int
    init: str
    hp: str
    transform: str
    recipe: str
    m: int
    seed: int
    member: int

    @property
    def model_hp(self):
        """The architecture's hyperparameters (symflow.architectures.ModelHP) from the tag."""
        from symflow.architectures import ModelHP

        return ModelHP.from_tag(str(self.hp))

    def training_run(self) -> TrainingRun:
        """This run as the bare record, its integers as integers and its hp as the tag (a job
        record, symflow.jobs.Run, or one built from strings gives the same record)."""
        values = {f.name: getattr(self, f.name) for f in fields(TrainingRun)}
        values["hp"] = getattr(values["hp"], "tag", values["hp"])  # a ModelHP: its tag
        return TrainingRun(**{k: int(v) if k in _INTS else str(v) for k, v in values.items()})


_INTS = ("width", "m", "seed", "member")

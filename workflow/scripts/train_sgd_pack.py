# Adapter: log (the pack's log, and each run's own), load the config's plug-ins, then one symflow call.
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.runtime import configure_jax  # noqa: E402

configure_jax(snakemake.threads, resources=snakemake.resources)
from symflow.logs import file_logger, log_to, timed  # noqa: E402
from symflow.registry import load_plugins  # noqa: E402
from symflow.jobs import Run  # noqa: E402
from symflow.train import TrainConfig, run_sgd_packed  # noqa: E402

log = log_to(snakemake.log.pack)
load_plugins(snakemake.config.get("plugins", []))  # the config's plug-ins, as the workflow saw them
res = snakemake.resources
runs, folders = [], []
# params: each run's record fields (runs) and settings (settings.runs), in the order of the
# pack's numbered inputs, outputs and logs
for i, (identity, settings) in enumerate(zip(snakemake.params.runs, snakemake.params.settings["runs"])):
    run = Run(**identity)
    folders.append(run.folder())
    runs.append(dict(
        data_path=snakemake.input[f"data_{i}"],
        eta0_path=snakemake.input[f"eta0_{i}"],
        metrics_path=snakemake.output[f"metrics_{i}"],
        predictions_path=snakemake.output[f"predictions_{i}"],
        curve_path=snakemake.output[f"curve_{i}"],
        checkpoint_path=run.checkpoint(),
        run=run,
        cfg=TrainConfig.from_settings(settings, checkpoint_every=int(res.checkpoint_every)),  # speed knob: a resource
        keep_checkpoint=bool(res.keep_checkpoint),
        log=file_logger(snakemake.log[f"run_{i}"], f"symflow.pack.{i}"),
    ))  # fmt: skip
with timed(log, f"SGD pack of {len(runs)} runs: " + ", ".join(folders)):
    run_sgd_packed(runs)

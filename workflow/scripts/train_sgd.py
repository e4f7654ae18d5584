# Adapter: log, load the config's plug-ins, then one symflow call.
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.runtime import configure_jax  # noqa: E402

configure_jax(snakemake.threads, resources=snakemake.resources)
from symflow.logs import log_to, timed  # noqa: E402
from symflow.registry import load_plugins  # noqa: E402
from symflow.jobs import Run  # noqa: E402
from symflow.train import TrainConfig, run_sgd  # noqa: E402

log = log_to(snakemake.log[0])
load_plugins(snakemake.config.get("plugins", []))  # the config's plug-ins, as the workflow saw them
res = snakemake.resources
run = Run.from_wildcards(snakemake.wildcards)
with timed(log, f"SGD {run.folder()}"):
    run_sgd(
        snakemake.input.data,
        snakemake.input.eta0,
        metrics_path=snakemake.output.metrics,
        predictions_path=snakemake.output.predictions,
        curve_path=snakemake.output.curve,
        checkpoint_path=run.checkpoint(),
        # the run's record (the job's) and its settings (params; speed knobs are resources: no rerun)
        run=run,
        cfg=TrainConfig.from_settings(snakemake.params.settings, checkpoint_every=int(res.checkpoint_every)),  # speed knob: a resource
        keep_checkpoint=bool(res.keep_checkpoint),
        log=log,
    )

# Adapter: log, load the config's plug-ins, then one symflow call.
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.runtime import configure_jax  # noqa: E402

configure_jax(snakemake.threads)
from symflow.logs import log_to, timed  # noqa: E402
from symflow.registry import load_plugins  # noqa: E402
from symflow.architectures import ModelHP  # noqa: E402
from symflow.jobs import Run  # noqa: E402
from symflow.train import TrainConfig, run_sgd  # noqa: E402

log = log_to(snakemake.log[0])
load_plugins(snakemake.config.get("plugins", []))  # the config's plug-ins, as the workflow saw them
wc = snakemake.wildcards
res = snakemake.resources
# the settings that change results (params), and the speed knobs (resources: no rerun)
settings = dict(snakemake.params.settings)
recipe = settings.pop("recipe")  # this run's recipe: the sgd section holds it under its name
sgd = {**settings, "recipes": {wc.recipe: recipe}, "checkpoint_every": res.checkpoint_every}
run = Run.from_wildcards(wc)
with timed(log, f"SGD {run.folder()}"):
    run_sgd(
        snakemake.input.data,
        snakemake.input.eta0,
        metrics_path=snakemake.output.metrics,
        predictions_path=snakemake.output.predictions,
        curve_path=snakemake.output.curve,
        checkpoint_path=run.checkpoint(),
        # the run's identity: the job's record (symflow.jobs.Run), fields as its path names them
        **{k: getattr(run, k) for k in ("dataset", "transform", "arch", "width", "init", "recipe", "m", "seed", "member")},
        hp=ModelHP.from_tag(run.hp),
        cfg=TrainConfig.from_sgd_section(sgd, wc.recipe),
        keep_checkpoint=bool(res.keep_checkpoint),
        log=log,
    )

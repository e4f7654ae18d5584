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
sgd = {**settings, "recipes": {wc.recipe: settings.pop("recipe")}, "checkpoint_every": res.checkpoint_every}
run = Run.from_wildcards(wc)
with timed(log, f"SGD {wc.arch}-w{wc.width}-{wc.init} {wc.recipe} on {wc.transform} m={wc.m} s{wc.seed} i{wc.member}"):
    run_sgd(
        snakemake.input.data,
        snakemake.input.eta0,
        metrics_path=snakemake.output.metrics,
        predictions_path=snakemake.output.predictions,
        curve_path=snakemake.output.curve,
        checkpoint_path=run.checkpoint(),
        dataset=wc.dataset,
        transform=wc.transform,
        arch=wc.arch,
        hp=ModelHP.from_tag(wc.hp),
        width=int(wc.width),
        init=wc.init,
        recipe=wc.recipe,
        m=int(wc.m),
        seed=int(wc.seed),
        member=int(wc.member),
        cfg=TrainConfig.from_sgd_section(sgd, wc.recipe),
        keep_checkpoint=bool(res.keep_checkpoint),
        log=log,
    )

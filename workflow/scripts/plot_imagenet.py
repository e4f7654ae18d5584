# Adapter: log, then one symflow call (issue 19 draft: workflow/rules/imagenet.smk is not included yet).
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to  # noqa: E402
from symflow.figures.fig5 import plot_fig5  # noqa: E402
from symflow.figures.figS3 import plot_figS3  # noqa: E402
from symflow.figures.figS4 import plot_figS4  # noqa: E402

log = log_to(snakemake.log[0])
s, out = snakemake.params.settings, snakemake.output
if snakemake.wildcards.figure == "fig5":
    plot_fig5(snakemake.input.points, out.pdf, out.png, curve_models=s["curves"]["models"],
              transforms=s["curves"]["transforms"], depth_models=s["depths"]["models"], quantities=s["quantities"])
elif snakemake.wildcards.figure == "figS3":
    plot_figS3(snakemake.input.points, out.pdf, out.png, models=s["models"], transforms=s["transforms"])
else:
    plot_figS4(snakemake.input.points, snakemake.input.history, out.pdf, out.png, models=s["models"],
               transforms=s["transforms"])
log.info("wrote %s and %s", out.pdf, out.png)

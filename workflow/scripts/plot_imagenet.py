# Adapter: log, then one symflow call (Fig. 5, S3 or S4 from the gathered ImageNet tables).
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.logs import log_to  # noqa: E402
from symflow.figures.fig5 import plot_fig5  # noqa: E402
from symflow.figures.figS3 import plot_figS3  # noqa: E402
from symflow.figures.figS4 import plot_figS4  # noqa: E402

log = log_to(snakemake.log[0])
options, out, inp = snakemake.params.settings["options"], snakemake.output, snakemake.input
figure = snakemake.wildcards.figure
if figure == "fig5":
    plot_fig5(inp.points, out.pdf, out.png, **options)
elif figure == "figS3":
    plot_figS3(inp.points, out.pdf, out.png, **options)
else:
    plot_figS4(inp.points, inp.history, out.pdf, out.png, **options)
log.info("wrote %s and %s", out.pdf, out.png)

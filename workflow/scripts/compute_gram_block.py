# Adapter: log, load the config's plug-ins, then one symflow call: one block (compute_gram_block),
# or a pack's blocks in turn (compute_gram_block_pack_<digest>, which uses this rule: its log
# `pack`, and each block's own log). Each block is read off its output path, which names
# everything that determines it.
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../..")
from symflow.jobs import Block  # noqa: E402
from symflow.runtime import configure_jax  # noqa: E402

outputs = list(snakemake.output)
blocks = [Block.from_output(path) for path in outputs]
first = blocks[0]
backend, dtype = first.kspec.split("-")
configure_jax(snakemake.threads, x64=dtype == "float64", resources=snakemake.resources)
from symflow.logs import file_logger, log_to, timed  # noqa: E402
from symflow.registry import load_plugins  # noqa: E402

packed = "pack" in snakemake.log.keys()
log = log_to(snakemake.log.pack if packed else snakemake.log[0])
load_plugins(snakemake.config.get("plugins", []))  # the config's plug-ins, as the workflow saw them

from symflow.architectures import ModelHP  # noqa: E402
from symflow.kernels import compute_block, compute_blocks  # noqa: E402

settings = dict(
    arch=first.arch,
    hp=ModelHP.from_tag(first.hp),
    block_size=first.bs,
    backend=backend,
    dtype=dtype,
    batch_rows=snakemake.resources.batch_rows,  # a speed knob: a resource, never a param
)
if not packed:
    compute_block(snakemake.input.data, outputs[0], split=first.split, i=first.i, j=first.j, log=log, **settings)
else:
    with timed(log, f"block pack of {len(blocks)}: results/kernels/{first.folder()}, column {first.j}"):
        compute_blocks(
            snakemake.input.data,
            [(path, b.split, b.i, b.j) for path, b in zip(outputs, blocks)],
            logs=[file_logger(snakemake.log[f"block_{k}"], f"symflow.block.{k}") for k in range(len(blocks))],
            log=log,
            **settings,
        )

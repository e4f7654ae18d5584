"""symflow: data symmetries, architectures and training algorithms, after
Xiao & Pennington, "Synergy and Symmetry in Deep Learning" (ICML 2022).

The package is a library: it never imports snakemake and never reads a config
file; the workflow in ``workflow/`` wires it together. Importing ``symflow`` is
cheap (no JAX); the heavy modules import JAX when they are imported.
"""

__version__ = "0.1.0"

#!/usr/bin/env bash
# Runs inside the new environment after snakemake creates it.
set -euo pipefail
pip install --no-deps neural-tangents==0.6.5

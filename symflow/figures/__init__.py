"""Figures: each function reads result files and writes a PDF and a PNG."""

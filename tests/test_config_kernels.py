"""Cross-field checks of the kernels section: block sizes must divide every m >= B."""

from __future__ import annotations

import pytest

from symflow.configuration import ConfigError, kernel_sizes, validate


def test_defaults_pass_and_list_every_kernel_regression():
    config = validate({})
    sizes = kernel_sizes(config)
    assert ("experiments.fig4.m", "VEC", 500) in sizes
    assert ("experiments.fig2.m", "GAP", 100) in sizes


def test_block_size_must_divide_m():
    with pytest.raises(ConfigError) as err:
        validate({"experiments": {"fig4": {"m": [125, 750]}}})
    assert str(err.value) == "experiments.fig4.m: 750 is not a multiple of kernels.block_size for VEC (500)"
    # an m below B is fine (cut from the first block); an architecture's own B wins over 'default'
    validate({"experiments": {"fig2": {"m": 100}}})
    with pytest.raises(ConfigError, match=r"experiments.figS6.m: 300 .* for GAP \(250\)"):
        validate({"experiments": {"figS6": {"m": [50, 300]}}})


def test_block_size_keys_are_architectures():
    with pytest.raises(ConfigError, match="kernels.block_size.GAPP: unknown architecture 'GAPP'"):
        validate({"kernels": {"block_size": {"default": 500, "GAPP": 100}}})

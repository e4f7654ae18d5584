"""A symflow plug-in: a colour-channel permutation group and a GAP network whose first
convolution is 1x1 (see docs/extending.md).

Name this module in the config to use it::

    plugins: [examples.channel_symmetry]

It registers, through the same calls symflow uses for the paper's entries:

* ``channel_perm``: P(3) x I_d, one random permutation of the three colour channels
  applied to every pixel. A permutation matrix is orthogonal, so this is a subgroup of
  O(3) x I_d (``o3_shared``), and it permutes the 3d coordinates, so it is one of P(3d)
  (``perm``) too: every architecture claimed invariant to o3_shared (or to perm) is
  thereby claimed invariant to channel_perm, and the symmetry audit checks it.
* ``GAP1x1``: GAP with a 1x1 first convolution (the remaining depth - 1 layers 3x3).
  Its first layer mixes only the channels of each pixel with shared weights, so, like
  GAP, it is claimed invariant to O(3) x I_d at infinite and finite width; the audit
  confirms or refutes the claim for every group in the config.
"""

from __future__ import annotations

import numpy as np

from symflow.architectures import ARCHITECTURES, Architecture, ModelHP
from symflow.groups import GROUPS, Group


def _sample_channel_perm(rng, shape, t):
    """A random permutation of the 3 channels other than the identity.

    The group has six elements, so a uniform draw would be the identity one time in six
    (seeds 0, 1 and 2 all draw it): such a dataset equals the untransformed one and tests
    nothing. Redrawing until the permutation moves a channel keeps tau a function of the
    seed alone.
    """
    if shape[-1] != 3:
        raise ValueError(f"channel_perm acts on 3 colour channels, images have {shape[-1]}")
    perm = rng.permutation(3)
    while (perm == np.arange(3)).all():
        perm = rng.permutation(3)
    return {"perm": perm}


def _apply_channel_perm(element, x):
    return x[..., element["perm"]]


def build_gap1x1(hp: ModelHP, width: int, k: int):
    from symflow._nt import stax

    def conv(size):
        return stax.Conv(
            width, (size, size), padding="CIRCULAR", W_std=hp.W_std, b_std=hp.b_std, parameterization="ntk"
        )

    layers = [conv(1), stax.Relu()]
    for _ in range(hp.depth - 1):
        layers += [conv(hp.filter_size), stax.Relu()]
    readout = stax.Dense(k, W_std=hp.W_std, b_std=hp.b_std, parameterization="ntk")
    return stax.serial(*layers, stax.GlobalAvgPool(), readout)


if "channel_perm" not in GROUPS:
    GROUPS.register(
        Group(
            name="channel_perm",
            description="P(3) x I_d: one random permutation of the colour channels on every pixel",
            label=r"$P(3)\otimes I_d$",
            sample=_sample_channel_perm,
            apply=_apply_channel_perm,
            subgroup_of=("o3_shared", "perm"),  # a permutation matrix is orthogonal; it permutes the 3d coordinates
        )
    )

if "GAP1x1" not in ARCHITECTURES:
    ARCHITECTURES.register(
        Architecture(
            name="GAP1x1",
            description="GAP with a 1x1 first convolution, then 3x3 circular convs, global average pool",
            build=build_gap1x1,
            invariant_infinite=("o3_shared",),
            invariant_finite=("o3_shared",),
            default_width=128,
            kernel_cost="pixel_pairs",  # pooling needs every pixel pair's covariance (sizes kernel jobs)
            layers="conv",  # shared filters (sizes SGD jobs)
        )
    )

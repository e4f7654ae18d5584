"""ImageNet (ILSVRC2012) for Sec. 6.2 of Xiao & Pennington (2022): Fig. 5 and Figs. S3, S4, S7-S9.

    data        the user's ILSVRC2012 (official archives, MD5-checked, or an extracted folder)
                converted once into ArrayRecord shards; nested subsets m_i = 2^(-i/2) m;
                the host input pipeline (grain): decode, random-resized crop, flip / centre crop
    transforms  tau on device, after normalisation: O(3)^d, P(3d), O(3) x I_d (symflow.groups' elements)
    models      ResNet-18..200 (v1.5, BatchNorm, as the flax ImageNet example) and MLP-Mixer-S/16
    train       the flax ImageNet example's recipe, data-parallel, resumable, one run -> its files
    curves      power-law slopes of the learning curves on the paper's two phases (i >= 6 / i < 6)
    results     the learning-curve point and history tables of the runs
    jobs        the runs a settings mapping asks for, their folders and their cost
    cost        GPU-hours of a training job, for the plan

The library never reads a config file: every function takes plain arguments.
docs/imagenet.md says what the paper specifies and what symflow chose where it is silent.
"""

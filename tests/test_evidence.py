"""Calibration of symflow.evidence: on synthetic cells with a known truth, correlated as real
ones are (every run is right on the easier images of one shared difficulty, a cell has its own
per-image preferences, a seeded run its own offset and noise), the 95% intervals cover the true
effect 93-97% of the time and the verdicts are wrong (holds for a false claim, fails for a true
one) at most 5% of the time. Fixed seeds; a few thousand draws in well under a minute."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from symflow import evidence as ev

N_IMAGES = 500
RESAMPLES = 200
DRAWS = 500
BETA = 1.0  # the weight of the shared image difficulty


def kernel(acc):
    """A kernel regression on a group its architecture is invariant to: deterministic given the images."""
    return dict(acc=acc, sd_seed=0.0, sd_cell=0.35, sd_run=0.0, seeded=False, k=1)


def taus(acc, k):
    """A kernel on a group it is not invariant to: each tau moves it a little."""
    return dict(acc=acc, sd_seed=0.03, sd_cell=0.35, sd_run=0.15, seeded=True, k=k)


def network(acc, k):
    """A finite network: its initialisation moves its accuracy (sd ~1.5 points) and, much more,
    which images it gets right."""
    return dict(acc=acc, sd_seed=0.06, sd_cell=0.5, sd_run=0.8, seeded=True, k=k)


def _sd(c):
    return math.sqrt(c["sd_seed"] ** 2 + BETA**2 + c["sd_cell"] ** 2 + c["sd_run"] ** 2)


def draw(rng, cells):
    """Cells on one fresh test set; returns (evidence cells, their true accuracies)."""
    d = rng.standard_normal(N_IMAGES)
    out = []
    for j, c in enumerate(cells):
        q = norm.ppf(c["acc"]) * _sd(c)  # P(q + noise > 0) = acc over images and seeds
        u = rng.standard_normal(N_IMAGES) * c["sd_cell"]
        runs = [(q + rng.standard_normal() * c["sd_seed"] + BETA * d + u
                 + rng.standard_normal(N_IMAGES) * c["sd_run"] > 0) for _ in range(c["k"])]
        out.append(ev.Cell(f"c{j}", np.array(runs, float), "test", c["seeded"]))
    return out, np.array([c["acc"] for c in cells])


SCENARIOS = {
    # name: (cells, effect, how the claim is judged, is the claim true)
    "kernels equal, 'a > b' claimed": ([kernel(0.25), kernel(0.25)], ev.difference(), ("direction", 1), False),
    "network below a kernel, claimed": ([network(0.18, 3), kernel(0.24)], ev.difference(), ("direction", -1), True),
    "networks equal, 'a > b' claimed": ([network(0.2, 2), network(0.2, 2)], ev.difference(), ("direction", 1), False),
    "taus 2 points off, 'within 2' claimed": ([taus(0.26, 3), kernel(0.24)], ev.difference(), ("closeness", 0.02),
                                              False),
    "networks 3 points apart, claimed": ([network(0.23, 4), network(0.2, 4)], ev.difference(), ("direction", 1), True),
    "flat learning curve, 'rises' claimed": ([kernel(0.3)] * 4, ev.slope(np.log([125, 250, 500, 1000])),
                                             ("direction", 1), False),
    "networks equal, 'within 2' claimed": ([network(0.2, 3), network(0.2, 3)], ev.difference(), ("closeness", 0.02),
                                           True),
    "log-log slope of networks, 'falls' claimed": ([network(a, 3) for a in (0.15, 0.2, 0.25, 0.3)],
                                                   ev.slope(np.log([125, 250, 500, 1000]), log_y=True),
                                                   ("direction", -1), False),
}


def _judge(est, how):
    kind, arg = how
    return (ev.direction("x", est, arg) if kind == "direction" else ev.closeness("x", est, arg)).verdict


def study(cells, fn, how, seed):
    rng = np.random.default_rng(seed)
    covered, verdicts = 0, []
    for i in range(DRAWS):
        sample, truth = draw(rng, cells)
        est = ev.estimate(sample, fn, seed=seed * 100_000 + i, resamples=RESAMPLES)
        covered += est.low <= float(fn(truth)) <= est.high
        verdicts.append(_judge(est, how))
    return covered / DRAWS, {v: verdicts.count(v) / DRAWS for v in ("holds", "fails", "inconclusive")}


@pytest.fixture(scope="module")
def results():
    return {name: study(cells, fn, how, seed) for seed, (name, (cells, fn, how, _)) in enumerate(SCENARIOS.items())}


def test_intervals_cover_the_true_effect(results):
    cover = {name: c for name, (c, _) in results.items()}
    pooled = sum(cover.values()) / len(cover)
    assert 0.93 <= pooled <= 0.97, cover
    # each scenario on its own, within the Monte Carlo error of DRAWS draws (se ~1%)
    assert all(0.90 <= c <= 0.985 for c in cover.values()), cover


def test_verdicts_are_wrong_at_most_five_percent_of_the_time(results):
    for name, (_, rates) in results.items():
        true_claim = SCENARIOS[name][3]
        wrong = rates["fails"] if true_claim else rates["holds"]
        assert wrong <= 0.05, (name, rates)


def test_true_claims_with_a_clear_effect_are_decided(results):
    # power, not calibration: a network 6 points below a kernel, with three seeds, is found
    assert results["network below a kernel, claimed"][1]["holds"] >= 0.8


def test_a_seeded_cell_with_one_run_is_not_estimated():
    rng = np.random.default_rng(0)
    (a, b), _ = draw(rng, [network(0.2, 1), kernel(0.25)])
    with pytest.raises(ev.NotEstimable, match="at least 2"):
        ev.estimate([a, b], ev.difference())


def test_identical_cells_give_an_exact_zero():
    rng = np.random.default_rng(1)
    (a, b), _ = draw(rng, [kernel(0.3), network(0.2, 3)])
    for c in (a, b):  # a seeded cell's seed effect cancels too: it is one cell, at two places
        est = ev.estimate([c, c], ev.difference())
        assert est.effect == 0 and est.low == 0 and est.high == 0


def test_paired_intervals_are_narrower_than_independent_binomials():
    # the point of pairing: two correlated kernels' difference is known far better than two
    # binomials would say (measured on the default run's NTK cells: 1.7-2.6x)
    rng = np.random.default_rng(2)
    (a, b), _ = draw(rng, [kernel(0.25), kernel(0.24)])
    est = ev.estimate([a, b], ev.difference())
    binomial = math.sqrt(a.mean * (1 - a.mean) / N_IMAGES + b.mean * (1 - b.mean) / N_IMAGES)
    assert est.se < binomial / 1.5


def test_a_claim_of_many_true_parts_rarely_fails():
    """A claim of K parts fails when one part fails: without a family-wise level, K true parts
    near their boundary would give a wrong 'fails' far more often than 5%. Ten closeness parts,
    each a true difference of 1.5 points inside a margin of 2 (networks, three seeds each)."""
    rng = np.random.default_rng(7)
    wrong_alone = wrong_family = 0
    draws = 150
    for i in range(draws):
        parts = []
        for j in range(10):
            cells, _ = draw(rng, [network(0.215, 3), network(0.2, 3)])
            est = ev.estimate(cells, ev.difference(), seed=i * 100 + j, resamples=RESAMPLES)
            parts.append(ev.closeness(f"part {j}", est, 0.02))
        wrong_alone += ev.conjunction(parts) == "fails"
        wrong_family += ev.conjunction(ev.family_wise(parts)) == "fails"
    assert wrong_family / draws <= 0.05, (wrong_alone, wrong_family)
    assert wrong_family <= wrong_alone  # the family-wise level only ever withdraws failures


def test_family_wise_keeps_a_clear_failure_and_exact_parts():
    est = ev.Estimate(0.10, 0.08, 0.12, 0.01, 0.01, 0.0, float("inf"), 0, 1000)  # 10 se from the margin
    parts = [ev.closeness(f"p{j}", est, 0.02) for j in range(20)]
    assert {p.verdict for p in ev.family_wise(parts)} == {"fails"}
    marginal = ev.Estimate(0.045, 0.0058, 0.0842, 0.02, 0.02, 0.0, float("inf"), 0, 1000)  # fails at 95% only
    out = ev.family_wise([ev.direction("m", marginal, -1)] + [ev.direction(f"q{j}", est, 1) for j in range(9)])
    assert out[0].verdict == "inconclusive" and "family-wise" in out[0].why
    exact = ev.Estimate(1e-3, 1e-3, 1e-3, 0.0, 0.0, 0.0, float("inf"), 0, 0)
    assert ev.still_fails(ev.at_most("e", exact, 1e-6), 0.9999)

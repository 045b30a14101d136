"""Scaling laws as small frozen values: the parametric L(N, D), a tokens-per-parameter rule, a power law.

Each law answers the same two planning questions: the compute-optimal (N, D) for a
budget C = 6ND, and the D to train a given N on. C = 6ND is the papers' convention
(Hoffmann et al. 2022); this trainer also counts attention (accounting.py), so it
prices a run of that N and D higher, by 1.2 to 1.6x for the small models of
configs/scaling/stdlib.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class ParametricLaw:
    """L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, eq. 2), loss in nats per token."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def loss(self, n, d):
        """Predicted loss for N parameters trained on D tokens (scalars or arrays)."""
        return self.E + self.A / np.power(n, self.alpha) + self.B / np.power(d, self.beta)

    @property
    def a(self) -> float:
        """N_opt grows as C^a."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """D_opt grows as C^b."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def G(self) -> float:
        return (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))

    def optimal(self, compute):
        """(N_opt, D_opt) minimizing L under 6ND = C: Hoffmann et al. eq. 4, in closed form."""
        c6 = np.asarray(compute, dtype=float) / 6
        return self.G * c6 ** self.a, c6 ** self.b / self.G

    def tokens_for(self, n):
        """The D at which N is compute-optimal: invert N = G (C/6)^a, then D = (C/6) / N."""
        return (np.asarray(n, dtype=float) / self.G) ** (self.b / self.a) / self.G


# Hoffmann et al. (2022), approach 3 fit (section 3.3 / appendix D.2).
CHINCHILLA = ParametricLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)


@dataclasses.dataclass(frozen=True)
class TokensPerParameter:
    """D = ratio x N: the rule of thumb drawn from Chinchilla's compute-optimal models (about 20)."""

    ratio: float = 20.0

    def __post_init__(self):
        if not self.ratio > 0:
            raise ValueError(f"tokens per parameter must be positive, got {self.ratio}")

    def optimal(self, compute):
        """(N, D) with D = ratio N and 6ND = C."""
        n = np.sqrt(np.asarray(compute, dtype=float) / (6 * self.ratio))
        return n, self.ratio * n

    def tokens_for(self, n):
        return self.ratio * np.asarray(n, dtype=float)


@dataclasses.dataclass(frozen=True)
class PowerLaw:
    """y = k x^p: loss against compute on the frontier, N_opt against C, best learning rate against C."""

    k: float
    p: float

    def __call__(self, x):
        return self.k * np.power(np.asarray(x, dtype=float), self.p)

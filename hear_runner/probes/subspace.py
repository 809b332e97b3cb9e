"""The span of the training rows, when it is small: the fast probe's first layer goes through it.

Many embeddings are a linear map of fewer numbers: hearbaseline's naive model projects
log-mel bands onto 4,096 dimensions, and its rows span about 200 of them. When the rows
``X`` (N, D) lie in the span of an orthonormal basis ``V`` (D, r), the first layer's product
``X W`` equals ``(X V)(Vᵀ W)``, and ``W``'s gradient ``Xᵀ dH`` equals ``V ((X V)ᵀ dH)``: the
same network, the same weights and the same gradients, at r (B + D) H multiply-adds a step
instead of B D H. The basis is accepted only where every row it is used for lies in it to
within float32 rounding (measured on each row, not assumed), and only where it saves at
least half of the layer's arithmetic; else the rows go in as they are. The ``faithful`` mode
never uses it: it runs heareval's arithmetic as heareval does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hear_runner.probes.data import ProbeSplit, Rows

#: Rows drawn to find the span, beyond the widest span worth using: a sample wider than
#: that span is refused at once, and a small sample keeps the search's memory small.
SAMPLE_MARGIN = 64
#: A direction counts when its energy in the sample exceeds this fraction of the largest's.
RANK_TOLERANCE = 1e-10
#: The most a row may lie outside the span, relative to its own norm (naive: 3e-4 at worst).
ROW_TOLERANCE = 1e-3
#: The most the rows of a split may lie outside the span together (Frobenius; naive: 2e-6).
SPLIT_TOLERANCE = 1e-5
#: Growing a basis, rows beyond this fraction of ROW_TOLERANCE give their residual's
#: direction, so that rows near the tolerance are brought well within it too.
GROW_MARGIN = 0.1


@dataclass
class Subspace:
    """An orthonormal basis (D, r) of the training rows' span."""

    basis: np.ndarray

    @property
    def rank(self) -> int:
        return int(self.basis.shape[1])

    def coordinates(self, parts: list[ProbeSplit]) -> np.ndarray | None:
        """The rows' coordinates (n, r) in the basis, or None if any row lies outside it."""
        out: list[np.ndarray] = []
        outside = total = 0.0
        for part in parts:
            for chunk in part.chunks():
                z = chunk @ self.basis
                residual = np.linalg.norm(chunk - z @ self.basis.T, axis=1)
                norm = np.linalg.norm(chunk, axis=1)
                if (residual > ROW_TOLERANCE * norm).any():
                    return None
                outside += float(np.square(residual, dtype=np.float64).sum())
                total += float(np.square(norm, dtype=np.float64).sum())
                out.append(z)
        if outside > SPLIT_TOLERANCE**2 * total:
            return None
        return np.concatenate(out) if out else np.zeros((0, self.rank), np.float32)

    def grown(self, parts: list[ProbeSplit], limit: int) -> Subspace | None:
        """The basis widened by the directions of the rows that lie outside it.

        A sample finds the directions most rows share; a few rows may also use directions
        too rare to be in it (an event task's frames: 5 rows in 14,406 beyond the
        tolerance). Their residuals (in float64, against the basis made orthonormal in
        float64, so that rounding adds no direction of its own) join the basis; None where
        more rows lie outside than the basis may grow by (``limit``).
        """
        q, _ = np.linalg.qr(self.basis.astype(np.float64))
        residuals: list[np.ndarray] = []
        norms: list[float] = []
        for part in parts:
            for chunk in part.chunks():
                x = chunk.astype(np.float64)
                residual = x - (x @ q) @ q.T
                norm = np.linalg.norm(x, axis=1)
                outside = np.linalg.norm(residual, axis=1) > GROW_MARGIN * ROW_TOLERANCE * norm
                residuals += list(residual[outside])
                norms += list(norm[outside])
                if len(residuals) > limit - self.rank + SAMPLE_MARGIN:
                    return None
        if not residuals:
            return self
        r = np.asarray(residuals)
        energy, vectors = np.linalg.eigh(r @ r.T)
        energy, vectors = energy[::-1], vectors[:, ::-1]
        # a direction counts if it alone could carry a row a tenth of the way to the margin
        floor = (0.1 * GROW_MARGIN * ROW_TOLERANCE * min(norms)) ** 2
        rank = int((energy > floor).sum())
        if rank == 0 or self.rank + rank > limit:
            return None
        extra = r.T @ (vectors[:, :rank] / np.sqrt(energy[:rank]))
        basis, _ = np.linalg.qr(np.concatenate([q, extra], axis=1))
        return Subspace(np.ascontiguousarray(basis, np.float32))


def worthwhile_rank(dim: int, batch: int) -> int:
    """The largest r for which r (B + D) is at most half of B D."""
    return (batch * dim) // (2 * (batch + dim))


def find_subspace(train: Rows, batch: int, seed: int) -> Subspace | None:
    """The training rows' span if it is small enough to save arithmetic, else None.

    Found from a sample of rows (the eigenvectors of their Gram matrix, in float64),
    then checked on every training row by :meth:`Subspace.coordinates`.
    """
    n, dim = len(train), train.parts[0].embeddings.shape[1]
    limit = worthwhile_rank(dim, batch)
    if limit < 1 or n <= limit:
        return None
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(n, size=min(n, limit + SAMPLE_MARGIN), replace=False))
    sample = train.take(index)[0].astype(np.float64)
    energy, vectors = np.linalg.eigh(sample @ sample.T)
    energy, vectors = energy[::-1], vectors[:, ::-1]
    if not energy[0] > 0:
        return None
    rank = int((energy > RANK_TOLERANCE * energy[0]).sum())
    if rank > limit or rank >= len(index):
        return None
    basis = sample.T @ (vectors[:, :rank] / np.sqrt(energy[:rank]))
    return Subspace(np.ascontiguousarray(basis, np.float32))

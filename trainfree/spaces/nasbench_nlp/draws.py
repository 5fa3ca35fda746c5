"""Replaying NAS-Bench-NLP's seeded weight draws without redrawing them for every architecture.

Every model is built under the same seed, so every architecture's weights are slices of one random
stream: after the embedding's N(0, 1) draw (the same for all), each ``uniform_(a, b)`` on a float32
tensor takes one 32-bit Mersenne-Twister output per element, u = (r & 2^24 - 1) / 2^24, and stores
fl32(u * (b - a) + a), rounded once (a fused multiply-add; which rounding this torch build uses is
checked against real draws when a stream starts). An architecture only moves the offsets.
``UniformStream`` keeps the stream's u values, so a process that scores many architectures draws
the stream once and turns its slices into weights (a multiply-add per weight instead of a
Mersenne-Twister step per draw, kept or discarded). Tests check the weights bit for bit against
building the model with torch's own draws.
"""
from __future__ import annotations

import torch


def _fma(u, lo, width, out):
    torch.addcmul(lo, u, width, out=out)  # one rounding where torch's CPU kernels fuse it (checked)


def _float64(u, lo, width, out, chunk=1 << 16):
    # u * width is exact in float64 (24 x 24 bits) and so is the sum: one rounding, to float32
    buf = torch.empty(min(chunk, u.numel()), dtype=torch.float64)
    flat_u, flat_out = u.reshape(-1), out.view(-1)
    for s in range(0, u.numel(), chunk):
        b = buf[: min(chunk, u.numel() - s)]
        b.copy_(flat_u[s: s + chunk]).mul_(width.double()).add_(lo.double())
        flat_out[s: s + chunk].copy_(b)


def _mul_add(u, lo, width, out):
    torch.mul(u, width, out=out).add_(lo)  # two roundings, for a generator built without FMA


#: ways the generator may round u * (b - a) + a; the first that reproduces a real draw is used
_FORMULAS = (_fma, _float64, _mul_add)
_CHECK_BOUNDS = ((-0.1, 0.1), (-1 / 600 ** 0.5, 1 / 600 ** 0.5), (-1 / 400 ** 0.5, 1 / 400 ** 0.5))


class UniformStream:
    """The U[0, 1) values torch's CPU generator yields under ``seed`` after ``torch.empty(shape).normal_()``.

    ``formula`` is None when no known rounding reproduces this torch build's draws; callers then
    draw with torch itself.
    """

    CHUNK = 1 << 22  # the values are kept in pieces of 4M (16 MiB), so growing never copies what is there

    def __init__(self, seed: int, normal_shape: tuple[int, ...]):
        self.key = (seed, tuple(normal_shape))
        self._gen = torch.Generator().manual_seed(seed)
        torch.empty(normal_shape).normal_(generator=self._gen)
        self._start_state = self._gen.get_state()
        self._chunks: list[torch.Tensor] = []
        self.formula = self._pick_formula()

    def _pick_formula(self):
        n = 4096
        self._extend(n)
        values = self.values(0, n)
        for formula in _FORMULAS:
            ok = True
            for low, high in _CHECK_BOUNDS:
                probe = torch.Generator()
                probe.set_state(self._start_state)
                want = torch.empty(n).uniform_(low, high, generator=probe)
                got = torch.empty(n)
                formula(values, *_bounds(low, high), got)
                ok = ok and torch.equal(got, want)
            if ok:
                return formula
        return None

    def __len__(self) -> int:
        return len(self._chunks) * self.CHUNK

    def _extend(self, end: int) -> None:
        while len(self) < end:
            self._chunks.append(torch.empty(self.CHUNK).uniform_(generator=self._gen))

    def values(self, offset: int, n: int) -> torch.Tensor:
        """The stream's u values [offset, offset + n): a view where they lie in one piece."""
        self._extend(offset + n)
        first, start = divmod(offset, self.CHUNK)
        if start + n <= self.CHUNK:
            return self._chunks[first][start: start + n]
        pieces, left = [], n
        while left:
            piece = self._chunks[first][start: start + left]
            pieces.append(piece)
            left -= piece.numel()
            first, start = first + 1, 0
        return torch.cat(pieces)

    def take(self, index: torch.Tensor) -> torch.Tensor:
        """The u values at the (long) positions ``index``, in its shape."""
        flat = index.reshape(-1)
        if not flat.numel():
            return torch.empty(index.shape)
        low, high = int(flat.min()), int(flat.max())
        self._extend(high + 1)
        first, last = low // self.CHUNK, high // self.CHUNK
        if first == last:
            return self._chunks[first][flat - first * self.CHUNK].view(index.shape)
        out = torch.empty(flat.shape)
        piece = flat // self.CHUNK
        for c in range(first, last + 1):
            mask = piece == c
            out[mask] = self._chunks[c][flat[mask] - c * self.CHUNK]
        return out.view(index.shape)

    def fill_(self, tensor: torch.Tensor, offset: int, low: float, high: float) -> None:
        """Set ``tensor`` (float32, CPU, contiguous) to what ``tensor.uniform_(low, high)`` gives at ``offset``."""
        self.formula(self.values(offset, tensor.numel()).view(tensor.shape), *_bounds(low, high), tensor)

    def fill_at_(self, tensor: torch.Tensor, index: torch.Tensor, low: float, high: float) -> None:
        """Set ``tensor`` to the draws at the stream positions ``index`` (same shape) of a ``uniform_(low, high)``."""
        self.formula(self.take(index), *_bounds(low, high), tensor)


def _bounds(low: float, high: float) -> tuple[torch.Tensor, torch.Tensor]:
    lo = torch.tensor(low, dtype=torch.float32)  # torch casts the bounds to float32 first
    return lo, torch.tensor(high, dtype=torch.float32) - lo


_CACHE: dict[tuple, UniformStream] = {}


def stream(seed: int, normal_shape: tuple[int, ...]) -> UniformStream:
    """This process's stream for (seed, shape); one is kept, since a scoring run uses one setting."""
    key = (seed, tuple(normal_shape))
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = UniformStream(seed, normal_shape)
    return _CACHE[key]

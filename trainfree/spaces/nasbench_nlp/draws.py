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

import numpy as np
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

    Each value is k / 2^24 for a 24-bit k, kept as k's three bytes: 3 bytes a value instead of a
    float32's 4 (~140 MiB instead of ~190 for the whole shipped PTB benchmark), read back through an
    unaligned 4-byte view with the top byte masked off. A weight is then fl(k * (width / 2^24) + low),
    the very number fl(u * width + low) is (the exact products are equal: width / 2^24 is exact).
    Values are kept in pieces of 4M, so growing never copies what is there.
    """

    CHUNK = 1 << 22

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
        step = min(self.CHUNK, 1 << 20)  # drawn 1M at a time: little memory beside the kept bytes
        while len(self) < end:
            raw = np.zeros(3 * self.CHUNK + 1, dtype=np.uint8)  # + 1: the last 4-byte read stays inside
            for s in range(0, self.CHUNK, step):
                k = torch.empty(step).uniform_(generator=self._gen).mul_(1 << 24).to(torch.int32)  # exact
                raw[3 * s: 3 * (s + step)].reshape(step, 3)[:] = k.numpy().view(np.uint8).reshape(step, 4)[:, :3]
            self._chunks.append(raw)

    def _view(self, chunk: int) -> np.ndarray:
        raw = self._chunks[chunk]
        return np.ndarray((self.CHUNK,), dtype="<i4", buffer=raw, strides=(3,))

    def _k(self, offset: int, n: int) -> torch.Tensor:
        """The 24-bit integers k of positions [offset, offset + n), as float32 (exact)."""
        self._extend(offset + n)
        out = np.empty(n, dtype=np.float32)
        done = 0
        while done < n:
            chunk, start = divmod(offset + done, self.CHUNK)
            m = min(n - done, self.CHUNK - start)
            np.bitwise_and(self._view(chunk)[start: start + m], 0xFFFFFF, out=out[done: done + m], casting="unsafe")
            done += m
        return torch.from_numpy(out)

    def values(self, offset: int, n: int) -> torch.Tensor:
        """The stream's u values [offset, offset + n), as float32."""
        return self._k(offset, n).mul_(1.0 / (1 << 24))

    def _take_k(self, index: torch.Tensor) -> torch.Tensor:
        """The k of the (long) positions ``index``, in its shape, as float32."""
        flat = index.reshape(-1).numpy()
        out = np.empty(flat.shape, dtype=np.float32)
        if flat.size:
            low, high = int(flat.min()), int(flat.max())
            self._extend(high + 1)
            for c in range(low // self.CHUNK, high // self.CHUNK + 1):
                mask = (flat >= c * self.CHUNK) & (flat < (c + 1) * self.CHUNK)
                out[mask] = self._view(c)[flat[mask] - c * self.CHUNK] & 0xFFFFFF
        return torch.from_numpy(out).view(index.shape)

    def take(self, index: torch.Tensor) -> torch.Tensor:
        """The u values at the (long) positions ``index``, in its shape."""
        return self._take_k(index).mul_(1.0 / (1 << 24))

    def fill_(self, tensor: torch.Tensor, offset: int, low: float, high: float) -> None:
        """Set ``tensor`` (float32, CPU, contiguous) to what ``tensor.uniform_(low, high)`` gives at ``offset``."""
        lo, width = _bounds(low, high)
        self.formula(self._k(offset, tensor.numel()).view(tensor.shape), lo, width / (1 << 24), tensor)

    def fill_at_(self, tensor: torch.Tensor, index: torch.Tensor, low: float, high: float) -> None:
        """Set ``tensor`` to the draws at the stream positions ``index`` (same shape) of a ``uniform_(low, high)``."""
        lo, width = _bounds(low, high)
        self.formula(self._take_k(index), lo, width / (1 << 24), tensor)


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

"""Sampled d-D region counting: distinct activation patterns of many points in a box.

The number of distinct patterns among the samples is the number of regions that received at least one
sample, so it is a **lower bound** on the regions meeting the box (``docs/algorithms.md``): deterministic, and
exact in the sense that patterns are compared bit for bit (see :mod:`regioncount.core.patterns`).  The richness
estimate (Chao1) and the coverage (Good-Turing) are **heuristics**: regions smaller than about 1/N of the
box are invisible to both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..core.devices import Stopwatch, default_memory_limit, resolve_device, tf32_enabled
from ..core.errors import CostLimitError, RegionCountError
from ..core.geometry import Box, resolve_box
from ..core.limits import Deadline
from ..core.patterns import DistinctPatterns, layer_words, pack_bits, positive
from ..core.results import SampledCount
from ..core.settings import DEFAULT_MAX_REGIONS
from ..graph.model import GraphModel
from ..line.cost import default_batch, estimate_sampled, layer_widths, model_words  # noqa: F401  (default_batch re-exported)
from ..line.kernels import normalized_deq
from ..models.fixedpoint import solve_fixed_points
from ..models.networks import DEQ, DTYPE, FFN, Model, deq_certificate, pattern_words

DTYPES = {"float64": torch.float64, "float32": torch.float32}


class PatternFunction:
    """Computes the packed activation patterns (B, words) of points (B, d) for one model, on a device."""

    def __init__(self, model: Model | GraphModel, device: torch.device, dtype: torch.dtype) -> None:
        self.model, self.device, self.dtype = model, device, dtype
        self.failures = 0
        self.kind: str
        self.n_words: int
        if isinstance(model, GraphModel):
            self.kind = "graph"
            self.n_words = model_words(model)
            return
        if isinstance(model, FFN):
            self.layers = [(w.to(device, dtype), b.to(device, dtype))
                           for w, b in zip(model.weights[:-1], model.biases[:-1])]
            self.kind = "ffn"
        elif model.unit_order is not None:
            Wn, Un, bn, _ = normalized_deq(model)
            self.Wn, self.Un, self.bn = Wn.to(device, dtype), Un.to(device, dtype), bn.to(device, dtype)
            self.kind = "triangular"
        else:
            self.kind = "general"
        self.n_words = pattern_words(model)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Packed patterns (B', words); B' < B only for general-W DEQ points whose solve failed."""
        if self.kind == "ffn":
            words, h = [], x
            for w, b in self.layers:
                pre = torch.addmm(b, h, w.T)
                words.append(pack_bits(positive(pre)))
                h = pre.clamp_min_(0)
            return torch.cat(words, 1) if len(words) > 1 else words[0]
        if self.kind == "graph":
            assert isinstance(self.model, GraphModel)
            return pack_bits(self.model.pattern_code(x.to(DTYPE)))
        if self.kind == "triangular":
            q = torch.addmm(self.bn, x, self.Un.T)
            z = torch.zeros_like(q)
            for t in range(q.shape[1]):
                u = q[:, t] + z[:, :t] @ self.Wn[t, :t] if t else q[:, t]
                z[:, t] = u.clamp_min(0)
            return pack_bits(z > 0)
        assert isinstance(self.model, DEQ)  # the general-W kind
        fixed = solve_fixed_points(self.model, x.to(DTYPE))
        self.failures += fixed.failures
        return pack_bits((fixed.u > 0)[fixed.ok])


def deq_patterns(model: DEQ, x: torch.Tensor, guess: torch.Tensor | None = None) -> torch.Tensor:
    """Exact patterns (N, m) of points (N, d), units in their own order: forward substitution for a
    triangular W, polished solves otherwise (starting from the likely patterns ``guess`` (N, m), if given)."""
    if model.unit_order is not None:
        return model.fixed_point(x.cpu()).to(x.device) > 0
    return solve_fixed_points(model, x, guess=guess).u > 0


def packed_patterns_at(model: Model | GraphModel, points: torch.Tensor) -> torch.Tensor:
    """Packed patterns (N, words) of points (N, d) in float64: per layer for an FFN (as
    :class:`PatternFunction`), units in their own order for a DEQ (as the exact partitions pack them)."""
    if isinstance(model, GraphModel):
        return pack_bits(model.pattern_code(points.to(DTYPE)))
    if isinstance(model, FFN):
        if not model.hidden_widths:
            return torch.zeros(points.shape[0], 1, dtype=torch.int64, device=points.device)
        return PatternFunction(model, points.device, DTYPE)(points)
    return layer_words(deq_patterns(model, points))


def _grid_points(box: Box, per_dim: int, start: int, count: int, device: torch.device,
                 dtype: torch.dtype) -> torch.Tensor:
    """Points ``start .. start + count - 1`` of the per_dim^d grid of cell centres, row-major."""
    index = torch.arange(start, start + count, device=device, dtype=torch.int64)
    coords = []
    for lo, hi in zip(box.low, box.high):
        coords.append(lo + (index % per_dim).to(dtype) * ((hi - lo) / per_dim) + (hi - lo) / (2 * per_dim))
        index = index // per_dim
    return torch.stack(coords, 1)


def chao1(distinct: int, f1: int, f2: int, n: int | None = None) -> tuple[float, float, float]:
    """Bias-corrected Chao1 richness with its log-normal 95% interval (Chao 1987; Chao et al. 2005, as in
    EstimateS): ``S + ((n-1)/n) f1 (f1-1) / (2 (f2+1))`` for n samples (n = None: the factor is 1)."""
    k = (n - 1) / n if n else 1.0
    estimate = distinct + k * f1 * (f1 - 1) / (2 * (f2 + 1))
    if f2 > 0:
        var = k * f1 * (f1 - 1) / (2 * (f2 + 1)) + k**2 * f1 * (2 * f1 - 1) ** 2 / (4 * (f2 + 1) ** 2) \
            + k**2 * f1**2 * f2 * (f1 - 1) ** 2 / (4 * (f2 + 1) ** 4) if f1 > 0 else 0.0
    else:
        var = k * f1 * (f1 - 1) / 2 + k**2 * f1 * (2 * f1 - 1) ** 2 / 4 - k**2 * f1**4 / (4 * estimate) \
            if f1 > 0 else 0.0
    unseen = estimate - distinct
    if unseen <= 0 or var <= 0:
        return estimate, float(distinct), estimate
    c = math.exp(1.96 * math.sqrt(math.log(1 + var / unseen**2)))
    return estimate, distinct + unseen / c, distinct + unseen * c



def check_sampled_regions(distinct: DistinctPatterns, done: int, max_regions: int | None) -> None:
    """Stop a sampled run that has seen more than ``max_regions`` distinct patterns after ``done`` samples
    (counted only once ``done`` exceeds the limit: fewer samples cannot have more patterns)."""
    if max_regions is not None and done > max_regions and len(distinct) > max_regions:
        raise CostLimitError(f"the first {done:,} samples show more distinct patterns than the limit of "
                             f"{max_regions:,} regions; raise `max_regions` or lower the number of samples")


def check_sampled_memory(distinct: DistinctPatterns, done: int, limit: int) -> None:
    """Stop a sampled run whose distinct-pattern set, after ``done`` samples, holds more than ``limit`` bytes."""
    held = distinct.nbytes
    if held > limit:
        raise CostLimitError(f"the distinct patterns of the first {done:,} samples ({len(distinct):,} patterns) "
                             f"already hold {held / 2**30:.3g} GiB, above the memory limit of "
                             f"{limit / 2**30:.3g} GiB; lower the number of samples or raise `memory_limit`")


#: Random samples come in blocks of SAMPLE_BLOCK points, block j drawn by its own generator seeded with
#: ``block_seed(seed, j)``: the same seed gives the same points however a run is batched or split into tasks.
SAMPLE_BLOCK = 1 << 16


def _splitmix64(value: int) -> int:
    value = (value + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return value ^ (value >> 31)


def block_seed(seed: int, block: int) -> int:
    """The generator seed (< 2^63) of random block ``block`` of the stream with ``seed`` (splitmix64)."""
    return _splitmix64(_splitmix64(seed) ^ block) >> 1


class SamplePoints:
    """The sample stream of a run: point i is cell centre i of the ``per_dim``^d grid (``per_dim`` > 0),
    else point i % SAMPLE_BLOCK of random block i // SAMPLE_BLOCK (uniform in the box)."""

    def __init__(self, box: Box, seed: int, per_dim: int, device: torch.device, dtype: torch.dtype) -> None:
        self.box, self.seed, self.per_dim, self.device, self.dtype = box, seed, per_dim, device, dtype
        self._low = torch.tensor(box.low, dtype=dtype, device=device)
        self._width = torch.tensor([h - lo for lo, h in zip(box.low, box.high)], dtype=dtype, device=device)
        self._cached: tuple[int, torch.Tensor] | None = None

    def _block(self, j: int) -> torch.Tensor:
        if self._cached is None or self._cached[0] != j:
            gen = torch.Generator(device=self.device).manual_seed(block_seed(self.seed, j))
            x = torch.rand(SAMPLE_BLOCK, self.box.dim, generator=gen, device=self.device, dtype=self.dtype)
            self._cached = (j, x.mul_(self._width).add_(self._low))
        return self._cached[1]

    def __call__(self, first: int, count: int) -> torch.Tensor:
        """Points ``first .. first + count - 1`` (count, d)."""
        if self.per_dim:
            return _grid_points(self.box, self.per_dim, first, count, self.device, self.dtype)
        parts = []
        end = first + count
        for j in range(first // SAMPLE_BLOCK, (end - 1) // SAMPLE_BLOCK + 1):
            lo, hi = max(first, j * SAMPLE_BLOCK) - j * SAMPLE_BLOCK, min(end, (j + 1) * SAMPLE_BLOCK) - j * SAMPLE_BLOCK
            parts.append(self._block(j)[lo:hi])
        return parts[0] if len(parts) == 1 else torch.cat(parts)


@dataclass(frozen=True)
class SamplingPlan:
    """A checked sampled run: its box, device, dtype, grid size (0: random), number of points, batch, memory
    limit, and whether the distinct set must be measured as it grows (the worst case exceeds the limit)."""

    box: Box
    device: torch.device
    torch_dtype: torch.dtype
    per_dim: int
    total: int
    batch: int
    memory_limit: int
    watch_memory: bool


def _check_kind(model: Model | GraphModel, assume_well_posed: bool, torch_dtype: torch.dtype) -> None:
    """Refuse an ill-posed DEQ, and float32 for graph models and general-W DEQs."""
    if isinstance(model, GraphModel):
        if torch_dtype != torch.float64:
            raise RegionCountError("graph models are sampled in float64 only")
        return
    deq_certificate(model, assume_well_posed)
    if isinstance(model, DEQ) and model.unit_order is None and torch_dtype != torch.float64:
        raise RegionCountError("general-W DEQs are sampled in float64 only (the polish solves need it)")


def plan_sampling(model: Model | GraphModel, low: Sequence[float] | float | None, high: Sequence[float] | float | None, *,
                  samples: int, grid: bool, batch: int | None, device: str | torch.device, dtype: str,
                  assume_well_posed: bool, memory_limit: int | None) -> SamplingPlan:
    """Check a sampled run's arguments and cost before it starts (see :func:`sample_regions`)."""
    if samples < 1:
        raise RegionCountError(f"the number of samples must be positive, got {samples}")
    if dtype not in DTYPES:
        raise RegionCountError(f"unknown dtype {dtype!r}; choose float64 or float32")
    _check_kind(model, assume_well_posed, DTYPES[dtype])
    box = resolve_box(model, low, high)
    dev = resolve_device(device)
    torch_dtype = DTYPES[dtype]
    per_dim = max(1, round(samples ** (1 / box.dim))) if grid else 0
    total = per_dim**box.dim if grid else int(samples)
    if grid and total > 2**62:
        raise CostLimitError(f"a grid of {per_dim}^{box.dim} points is too large")
    batch = default_batch(model, torch_dtype, dev) if batch is None else max(1, int(batch))
    widths = layer_widths(model)
    batch_bytes = batch * max(widths) * 24
    if batch_bytes > default_memory_limit():
        raise CostLimitError(f"a batch of {batch:,} points needs about {batch_bytes / 2**30:.3g} GiB of activations, "
                             f"above the limit of {default_memory_limit() / 2**30:.3g} GiB; lower `batch`")
    limit = default_memory_limit() if memory_limit is None else int(memory_limit)
    most_distinct = min(total, 2 ** min(sum(widths), 62))
    worst = estimate_sampled(model, samples=total, distinct=most_distinct, batch=batch, device=dev,
                             dtype=torch_dtype)
    # else no run of this size can outgrow the limit
    return SamplingPlan(box, dev, torch_dtype, per_dim, total, batch, limit, watch_memory=worst.bytes > limit)


def sample_regions(model: Model | GraphModel, low: Sequence[float] | float | None = None,
                   high: Sequence[float] | float | None = None, *, samples: int = 10**6, grid: bool = False,
                   seed: int = 0, batch: int | None = None, device: str | torch.device = "auto",
                   dtype: str = "float64", assume_well_posed: bool = False,
                   progress: Callable[[float], None] | None = None,
                   max_seconds: float | None = None, memory_limit: int | None = None,
                   max_regions: int | None = DEFAULT_MAX_REGIONS) -> SampledCount:
    """Count the distinct activation patterns of ``samples`` points in a box (see module docstring).

    ``grid=True`` uses the regular grid of cell centres with round(samples^(1/d)) points per axis (the
    sample count is then that number to the d).  ``dtype="float32"`` is faster on GPUs but decides the
    sign of a pre-activation within ~1e-7 of zero differently from float64: a sampled count in float32
    can gain or lose patterns near region boundaries.  ``max_seconds``: a deadline for the whole call
    (:mod:`regioncount.core.limits`): the run stops after the first batch when it is projected to take longer
    (a :class:`CostLimitError` with the estimate), and after any batch that ends past it.  ``memory_limit``
    (bytes, default half the RAM): when even the worst case (every sample a new pattern, at most 2^units)
    is estimated above it, the distinct set is measured after every batch and the run stops with a
    :class:`CostLimitError` as soon as it holds more (the number of patterns is not known in advance).
    ``max_regions``: stop (:class:`CostLimitError`) once more distinct patterns than this have been seen.
    """
    deadline = Deadline(max_seconds)
    plan = plan_sampling(model, low, high, samples=samples, grid=grid, batch=batch, device=device, dtype=dtype,
                         assume_well_posed=assume_well_posed, memory_limit=memory_limit)
    box, dev, torch_dtype, per_dim, total, batch = plan.box, plan.device, plan.torch_dtype, plan.per_dim, \
        plan.total, plan.batch
    memory_limit, watch_memory = plan.memory_limit, plan.watch_memory
    patterns = PatternFunction(model, dev, torch_dtype)
    distinct = DistinctPatterns(patterns.n_words, dev)
    points = SamplePoints(box, seed, per_dim, dev, torch_dtype)
    watch = Stopwatch(dev)

    def after_batch(done: int) -> None:
        if progress is not None:
            progress(done / total)
        if watch_memory:
            check_sampled_memory(distinct, done, memory_limit)
        if done <= batch and max_seconds is not None and done < total:
            projected = watch.seconds() * total / done
            if projected > max_seconds:
                raise CostLimitError(
                    f"sampling {total:,} points would take about {projected:.3g} s (timed on the first "
                    f"{done:,}), above the time limit of {max_seconds:g} s; raise `max_seconds` or lower `samples`")
        check_sampled_regions(distinct, done, max_regions)
        if done < total:
            deadline.check(f"sampling (at {done:,} of {total:,} points)")

    sample_range(patterns, points, 0, total, batch, distinct, after_batch)
    return summarize(model, distinct, patterns.failures, box=box, grid=grid, seed=seed, dtype=dtype, device=dev,
                     seconds=watch.seconds())


def sample_range(patterns: PatternFunction, points: SamplePoints, start: int, stop: int, batch: int,
                 distinct: DistinctPatterns, after_batch: Callable[[int], None] | None = None) -> None:
    """Add the patterns of the stream's points ``start .. stop - 1`` to ``distinct``, ``batch`` at a time;
    ``after_batch(done)`` is called after each batch with the points done so far (from ``start``)."""
    with torch.no_grad():
        for first in range(start, stop, batch):
            count = min(batch, stop - first)
            distinct.add(patterns(points(first, count)))
            if after_batch is not None:
                after_batch(first + count - start)


def _sampling_warnings(K: int, f1: int, used: int, grid: bool, failures: int, dev: torch.device,
                       torch_dtype: torch.dtype) -> list[str]:
    """What a sampled count's reader should know: unsaturated samples, TF32 float32 products, failed solves."""
    warnings = []
    if K and f1 > K / 2 and not grid:
        warnings.append(f"unsaturated: {f1:,} of {K:,} patterns were seen once; more regions are likely unseen")
    if used and K > used / 2:
        warnings.append(f"unsaturated: {K:,} distinct patterns among {used:,} samples")
    if dev.type == "cuda" and torch_dtype == torch.float32 and tf32_enabled():
        warnings.append("TF32 is enabled in this process (torch.backends.cuda.matmul.allow_tf32 or "
                        "set_float32_matmul_precision): float32 pre-activations were computed with 10-bit mantissas")
    if failures:
        warnings.append(f"{failures:,} fixed-point solves failed their checks and were left out")
    return warnings


def summarize(model: Model | GraphModel, distinct: DistinctPatterns, failures: int, *, box: Box, grid: bool, seed: int,
              dtype: str, device: torch.device, seconds: float) -> SampledCount:
    """The :class:`SampledCount` of a finished distinct-pattern multiset (counts, Chao1, coverage, histogram,
    warnings); the same multiset gives the same result however its samples were batched or split."""
    dev, torch_dtype = device, DTYPES[dtype]
    with torch.no_grad():
        counts = distinct.counts
    used = int(counts.sum())
    K = int(counts.shape[0])
    f1, f2 = int((counts == 1).sum()), int((counts == 2).sum())
    estimate, lo95, hi95 = chao1(K, f1, f2, used)
    fractions = counts.double() / max(used, 1)
    largest = torch.topk(fractions, min(10, K)).values.tolist() if K else []
    edges = [10.0**-k for k in range(0, 13)][::-1]
    hist = torch.histc(torch.log10(fractions.cpu()), bins=12, min=-12, max=0).long().tolist() if K else []
    warnings = _sampling_warnings(K, f1, used, grid, failures, dev, torch_dtype)
    estimates = {"coverage": None, "chao1": None, "chao1_interval": None} if grid else \
        {"coverage": 1 - f1 / used if used else 0.0, "chao1": estimate, "chao1_interval": (lo95, hi95)}
    return SampledCount(
        model=model.name or model.describe(), samples=used, distinct_patterns=K, seen_once=f1, seen_twice=f2,
        **estimates, largest_fractions=largest,
        histogram={"log10_fraction_edges": [math.log10(e) for e in edges], "regions": hist},
        box=box, grid=grid, seed=seed, dtype=dtype, device=dev.type, seconds=seconds,
        solve_failures=failures, hash_collisions=distinct.collisions, warnings=warnings,
    )

"""In-memory ReLU networks: feed-forward (FFN) and deep equilibrium (DEQ) models.

Both hold float64 CPU tensors; ``model.to(device)`` gives the same model on a device, copied once per
device and kept on the model (the enumerators call it and then use the model's tensors as they are).
Validation happens once, here, at construction, so the numerical kernels can assume clean inputs:

* FFN: ``x -> W_L relu(... relu(W_1 x + b_1) ...) + b_L``; ReLU after every layer but the last.
* DEQ: ``z = relu(W z + U x + b)``, ``y = A z + B x + c``.  ``B`` (an input skip into the readout) is an
  extension of the v1 format used by readout (a) of the Theorem 1 DEQ; it defaults to zero.

A DEQ with lower-triangular ``W`` (or, more generally, one whose off-diagonal unit graph is acyclic) and
every diagonal entry < 1 has exactly one fixed point for every x, found by forward substitution
``z_t = relu(r_t) / (1 - W_tt)``.  It is the same function as a depth-m chain of width-1 layers with dense
skip connections from every earlier unit and from the input.  Any other W is accepted here
(``unit_order`` is None) and judged by :func:`regioncount.models.wellposed.certify` wherever it is used.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TypeVar

import torch

from ..core.errors import ModelFormatError, NotWellPosedError
from ..core.geometry import Domain
from ..core.patterns import packed_words
from .fixedpoint import solve_fixed_points
from .modelfile import check_deq_shapes, check_domain, check_ffn_shapes, check_layer_counts
from .wellposed import acyclic_order, require_well_posed

DTYPE = torch.float64

_M = TypeVar("_M", "FFN", "DEQ")


def _on(tensor: torch.Tensor, device: torch.device) -> bool:
    return tensor.device.type == device.type and (device.index is None or tensor.device.index == device.index)


def _moved(model: _M, device: str | torch.device, names: list[str]) -> _M:
    """``model`` with the tensors ``names`` (attribute names; "weights"/"biases" are lists) on ``device``:
    the model itself when they are all there, else a copy made once per device, kept on the model while
    its tensors are the same unmodified objects (identity and version)."""
    device = _full_device(device)
    tensors = [t for name in names for t in _as_list(getattr(model, name))]
    if all(_on(t, device) for t in tensors):
        return model
    key = tuple((id(t), t._version) for t in tensors)
    copies = model.__dict__.setdefault("_device_copies", {})
    kept = copies.get(str(device))
    if kept is not None and kept[0] == key:
        return kept[1]
    moved = copy.copy(model)
    moved.__dict__ = {k: v for k, v in model.__dict__.items() if not k.startswith("_")}
    for name in names:
        value = getattr(model, name)
        setattr(moved, name, [t.to(device) for t in value] if isinstance(value, list) else value.to(device))
    copies[str(device)] = (key, moved)
    return moved


def _full_device(device: str | torch.device) -> torch.device:
    """The device with its index: "cuda" and "cuda:<current>" are one device."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def _as_list(value: object) -> list:
    """An attribute that is a list of tensors (weights, biases) or one tensor, as a list."""
    return value if isinstance(value, list) else [value]


def _as_tensor(value: object, what: str, dims: int) -> torch.Tensor:
    """A float64 CPU copy of ``value`` with ``dims`` dimensions and finite entries, else ModelFormatError."""
    tensor = torch.as_tensor(value, dtype=DTYPE).detach().cpu().clone()
    if tensor.dim() != dims:
        noun = "a matrix (list of rows)" if dims == 2 else "a vector"
        raise ModelFormatError(f"{what} must be {noun}, got shape {tuple(tensor.shape)}")
    _check_finite(tensor, what)
    return tensor


def _as_matrix(value: object, what: str) -> torch.Tensor:
    return _as_tensor(value, what, 2)


def _as_vector(value: object, what: str) -> torch.Tensor:
    return _as_tensor(value, what, 1)


def _check_finite(tensor: torch.Tensor, what: str) -> None:
    bad = ~torch.isfinite(tensor)
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0])
        raise ModelFormatError(f"{what} has a non-finite value {tensor[index].item()} at index {list(index)}")


def _check_domain(domain: Domain | None, input_dim: int) -> None:
    check_domain(None if domain is None else domain.low, input_dim)


@dataclass
class FFN:
    """Feed-forward ReLU network.

    ``weights[l]`` has shape (out_l, in_l) and ``biases[l]`` shape (out_l,); ``in_{l+1} == out_l``.
    The hidden layers are all but the last; the last layer is the affine readout.
    """

    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    name: str | None = None
    domain: Domain | None = None

    def __post_init__(self) -> None:
        check_layer_counts(len(self.weights), len(self.biases))
        self.weights = [_as_matrix(w, f"layers[{i}].weight") for i, w in enumerate(self.weights)]
        self.biases = [_as_vector(b, f"layers[{i}].bias") for i, b in enumerate(self.biases)]
        check_ffn_shapes([(int(w.shape[0]), int(w.shape[1])) for w in self.weights],
                         [int(b.shape[0]) for b in self.biases])
        _check_domain(self.domain, self.input_dim)

    kind = "ffn"

    def to(self, device: str | torch.device) -> FFN:
        """This network with its weights and biases on ``device`` (itself, or a copy kept per device)."""
        return _moved(self, device, ["weights", "biases"])

    @property
    def input_dim(self) -> int:
        return int(self.weights[0].shape[1])

    @property
    def output_dim(self) -> int:
        return int(self.weights[-1].shape[0])

    @property
    def hidden_widths(self) -> list[int]:
        return [int(w.shape[0]) for w in self.weights[:-1]]

    def describe(self) -> str:
        widths = "x".join(str(n) for n in self.hidden_widths) or "no hidden layer"
        return f"FFN {self.input_dim} -> [{widths}] -> {self.output_dim}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate the network on points ``x`` of shape (N, d); returns (N, k).  Each layer is
        ``torch.nn.functional.linear``, the kernel of ``nn.Linear``: a converted module gives the same bits."""
        h = x.to(DTYPE)
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            h = torch.relu(torch.nn.functional.linear(h, w, b))
        return torch.nn.functional.linear(h, self.weights[-1], self.biases[-1])


@dataclass
class DEQ:
    """Deep equilibrium model ``z = relu(W z + U x + b)``, ``y = A z + B x + c``.

    Shapes: W (m, m), U (m, d), b (m,), A (k, m), B (k, d), c (k,).  ``B`` and ``c`` default to zero.
    ``unit_order`` is a forward-substitution order when the unit graph of W is acyclic and diag(W) < 1,
    else None (general or ill-posed W; see :mod:`regioncount.models.wellposed`).
    """

    W: torch.Tensor
    U: torch.Tensor
    b: torch.Tensor
    A: torch.Tensor
    # None on input means zeros: __post_init__ always leaves tensors here
    c: torch.Tensor = None  # type: ignore[assignment]
    B: torch.Tensor = None  # type: ignore[assignment]
    name: str | None = None
    domain: Domain | None = None
    unit_order: list[int] | None = field(init=False, repr=False)

    kind = "deq"

    def to(self, device: str | torch.device) -> DEQ:
        """This DEQ with W, U, b, A, B, c on ``device`` (itself, or a copy kept per device)."""
        return _moved(self, device, ["W", "U", "b", "A", "B", "c"])

    def __post_init__(self) -> None:
        self.W = _as_matrix(self.W, "W")
        self.U = _as_matrix(self.U, "U")
        self.b = _as_vector(self.b, "b")
        self.A = _as_matrix(self.A, "A")
        def shape(t: torch.Tensor) -> tuple[int, int]:
            return int(t.shape[0]), int(t.shape[1])

        check_deq_shapes(shape(self.W), shape(self.U), int(self.b.shape[0]), shape(self.A), None, None)
        k, d = self.A.shape[0], self.U.shape[1]
        self.c = torch.zeros(k, dtype=DTYPE) if self.c is None else _as_vector(self.c, "c")
        self.B = torch.zeros(k, d, dtype=DTYPE) if self.B is None else _as_matrix(self.B, "B")
        check_deq_shapes(shape(self.W), shape(self.U), int(self.b.shape[0]), shape(self.A), int(self.c.shape[0]),
                         shape(self.B))
        _check_domain(self.domain, d)
        order = acyclic_order(self.W)
        self.unit_order = order if order is not None and bool((torch.diagonal(self.W) < 1).all()) else None

    @property
    def width(self) -> int:
        return int(self.W.shape[0])

    @property
    def input_dim(self) -> int:
        return int(self.U.shape[1])

    @property
    def output_dim(self) -> int:
        return int(self.A.shape[0])

    def describe(self) -> str:
        return f"DEQ width {self.width}, input {self.input_dim} -> output {self.output_dim}"

    def fixed_point(self, x: torch.Tensor) -> torch.Tensor:
        """The fixed point z*(x) for points ``x`` of shape (N, d); (N, m): by forward substitution (exact) for
        a triangular W; otherwise, once W is certified well-posed (:func:`deq_certificate`, cached while W is
        unchanged), by :func:`regioncount.models.fixedpoint.solve_fixed_points` (Picard iteration, then an exact
        solve on each point's pattern, checked), exact up to float64 rounding."""
        if self.unit_order is None:
            key = (id(self.W), self.W._version)
            if getattr(self, "_certified", None) != key:
                deq_certificate(self)  # raises NotWellPosedError unless W is shown well-posed
                self._certified = key
            points = solve_fixed_points(self, x.to(DTYPE))
            if points.failures:
                raise NotWellPosedError(f"{points.failures} of {x.shape[0]} fixed points failed their checks "
                                        "(sign consistency and residual)")
            return points.z
        x = x.to(DTYPE)
        pre_input = x @ self.U.T + self.b
        z = torch.zeros(x.shape[0], self.width, dtype=DTYPE)
        for t in self.unit_order:
            r = pre_input[:, t] + z @ self.W[t] - z[:, t] * self.W[t, t]
            z[:, t] = torch.relu(r) / (1.0 - self.W[t, t])
        return z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate ``y = A z*(x) + B x + c`` on points of shape (N, d); returns (N, k)."""
        x = x.to(DTYPE)
        return self.fixed_point(x) @ self.A.T + x @ self.B.T + self.c


Model = FFN | DEQ


def require_network(model: object, what: str) -> None:
    """Refuse, in one line, a model other than an FFN or a DEQ (a graph model) where ``what`` needs one."""
    if not isinstance(model, (FFN, DEQ)):
        raise ModelFormatError(f"{what} takes an FFN or a DEQ, not a {type(model).__name__}; graph models are "
                               "counted along segments (count_segment) and sampled (sample_regions)")


def zero_rows(weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """(n,) bool: the units of an affine layer ``x -> W x + b`` ((n, d) and (n,)) whose every weight and bias
    are zero, so their pre-activation is exactly zero everywhere."""
    return (weight == 0).all(1) & (bias == 0)


def input_free_units(model: Model) -> torch.Tensor:
    """(units,) bool, hidden units in the model's order (FFN layer by layer): the units whose pre-activation
    is exactly zero everywhere, because every weight into them and their bias are zero (a DEQ unit's own
    diagonal entry aside: u_j = W_jj relu(u_j) has only u_j = 0 when W_jj < 1)."""
    if isinstance(model, FFN):
        if not model.hidden_widths:
            return torch.zeros(0, dtype=torch.bool, device=model.weights[0].device)
        return torch.cat([zero_rows(w, b) for w, b in zip(model.weights[:-1], model.biases[:-1])])
    off_diagonal = model.W * (1 - torch.eye(model.width, dtype=model.W.dtype, device=model.W.device))
    return (off_diagonal == 0).all(1) & (model.U == 0).all(1) & (model.b == 0)


def deq_certificate(model: Model, assume_well_posed: bool = False) -> str | None:
    """For a DEQ that forward substitution cannot solve: the certificate that it is well-posed.

    Raises :class:`NotWellPosedError` (one line, with the failing minor and ||W||_2) unless it is shown
    well-posed or ``assume_well_posed`` is set; returns a short description, or None for FFNs and
    triangular DEQs.
    """
    if not isinstance(model, DEQ) or model.unit_order is not None:  # FFNs and triangular DEQs need none
        return None
    if assume_well_posed:
        return "assumed well-posed (`assume_well_posed`): every solve is checked"
    return require_well_posed(model.W).reason


def pattern_words(model: Model) -> int:
    """64-bit words of a model's packed activation pattern: one block per hidden layer of an FFN, one block of
    ``width`` bits for a DEQ."""
    widths = model.hidden_widths if isinstance(model, FFN) else [model.width]
    return sum(packed_words(n) for n in widths)

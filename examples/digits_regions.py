"""Linear regions of networks trained on real images: scikit-learn's 8x8 digits (docs/graphs.md).

    python examples/digits_regions.py [OUTDIR] [--epochs 30] [--quick] [--proof-seconds S]

Trains, seeded and on the CPU, a small CNN (convolutions, ReLU, max pooling), a residual net (a block with
batch norm and a skip connection, average pooling), a leaky-ReLU MLP and a convolutional DEQ on 1,500 of
the 1,797 digits; reads each with ``from_module`` (a graph model; the DEQ as a DEQ); counts its regions
exactly along the segment between two test digits, and partitions the plane through three test digits
(a 0, a 1 and a 7) with its decision boundary.  Writes OUTDIR/digits_regions.json and one PNG per net
(default OUTDIR: examples/output).  ``--quick``: two epochs and small nets, for a smoke test.  Needs
scikit-learn (``pip install "regioncount[digits]"``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

from regioncount import count_segment, decision_boundary, from_module, partition_plane
from regioncount.models.nn import ConvDEQ
from regioncount.viz.plot import plot_partition


class ResidualNet(nn.Module):
    """conv -> ReLU -> [conv -> BN -> ReLU -> conv -> BN] + skip -> ReLU -> average pool -> linear."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, channels, 3, padding=1)
        self.conv1, self.bn1 = nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels)
        self.conv2, self.bn2 = nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels)
        self.pool = nn.AvgPool2d(2)
        self.head = nn.Linear(channels * 16, 10)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = torch.relu(h + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(h))))))
        return self.head(self.pool(h).flatten(1))


def nets(quick: bool, seed: int = 0) -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    """The four nets, initialised from ``seed`` (the same weights on every run)."""
    torch.manual_seed(seed)
    c = 2 if quick else 4
    return {
        "cnn": (nn.Sequential(nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(8 * c, 10)), (1, 8, 8)),
        "resnet": (ResidualNet(c), (1, 8, 8)),
        "leaky_mlp": (nn.Sequential(nn.Linear(64, 8 * c), nn.LeakyReLU(0.1), nn.Linear(8 * c, 8 * c),
                                    nn.LeakyReLU(0.1), nn.Linear(8 * c, 10)), (64,)),
        "conv_deq": (ConvDEQ(1, c // 2 if quick else 2, (8, 8), 10, iterations=30), (1, 8, 8)),
    }


def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits as sklearn_digits  # bundled with scikit-learn: no download

    data = sklearn_digits()
    return torch.tensor(data.data / 16.0, dtype=torch.float64), torch.tensor(data.target, dtype=torch.long)


def train(module: nn.Module, shape: tuple[int, ...], x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    module.train()
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=gen)
        for batch in order.split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(module(x[batch].reshape(-1, *shape)), y[batch]).backward()
            opt.step()
    module.eval()


def first_of(y: torch.Tensor, digit: int) -> int:
    return int(torch.nonzero(y == digit)[0])


def study(name: str, module: nn.Module, shape: tuple[int, ...], data: tuple, epochs: int, out: Path,
          proof_seconds: float | None = None) -> dict:
    x, y = data
    train_x, train_y, test_x, test_y = x[:1500], y[:1500], x[1500:], y[1500:]
    torch.manual_seed(0)
    module = module.double()
    start = time.perf_counter()
    train(module, shape, train_x, train_y, epochs, seed=0)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        accuracy = float((module(test_x.reshape(-1, *shape)).argmax(1) == test_y).double().mean())
    graph = from_module(module, input_shape=shape, name=name)  # a ConvDEQ becomes a DEQ, the rest graph models
    a, b = test_x[first_of(test_y, 3)], test_x[first_of(test_y, 8)]
    segment = count_segment(graph, segment=(a.tolist(), b.tolist()))
    through = tuple(test_x[first_of(test_y, d)].tolist() for d in (0, 1, 7))
    plane = partition_plane(graph, through=through, proof_seconds=proof_seconds)
    edge = decision_boundary(plane)
    plot_partition(plane, out / f"digits_{name}.png", boundary=edge)
    return {"net": name, "model": graph.describe(), "train_seconds": round(seconds, 2), "test_accuracy": accuracy,
            "segment_3_to_8": {"activation_regions": segment.activation_regions,
                               "linear_pieces": segment.linear_pieces, "method": segment.method},
            "plane_0_1_7": {"activation_regions": plane.activation_regions, "linear_pieces": plane.linear_pieces,
                            "method": plane.method, "notes": plane.notes},
            "decision_boundary": edge.to_json()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(Path(__file__).parent / "output"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--proof-seconds", type=float, default=None,
                        help="the time the rational arithmetic of a plane may take: the exact comparisons of "
                             "neighbouring outputs, or the whole check where a sign was left (default 60 s; past "
                             "it: approximate)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_digits()
    rows = [study(name, module, shape, data, 2 if args.quick else args.epochs, out, args.proof_seconds)
            for name, (module, shape) in nets(args.quick).items()]
    (out / "digits_regions.json").write_text(json.dumps(rows, indent=2) + "\n")
    for row in rows:
        seg, plane, edge = row["segment_3_to_8"], row["plane_0_1_7"], row["decision_boundary"]
        print(f"{row['net']:>10}: test accuracy {row['test_accuracy']:.3f}; 3 -> 8: {seg['activation_regions']:,} "
              f"regions, {seg['linear_pieces']:,} pieces ({seg['method']}); plane 0-1-7: "
              f"{plane['activation_regions']:,} regions ({plane['method']}), decision boundary "
              f"{edge['segments']} segments, length {edge['length']:.3g}")


if __name__ == "__main__":
    main()

"""Benchmark of exact 1-D counts of DEQs with a general (cyclic) W: the pattern walk and its proof.

    python benchmarks/bench_general_deq.py [--devices cpu,cuda] [--repeats 3] [--json FILE]

Cases: random contractive W (||W||_2 = 0.95, m = 16, 64, 128, on [-30, 30]) and the Theorem 1 DEQ with one
cyclic entry W[0, m-1] = 2^-30 added (m = 8, 10, 12 on [0, 1]: 2^m regions).  Each row is the best of
``--repeats`` timings of the count itself (``SegmentCount.seconds``: the walk, its a-posteriori proof and
any exact decisions; the well-posedness certificate is not timed, ``assume_well_posed``).  Prints a
markdown table naming the method that made each count.
"""

from __future__ import annotations

import json


def contractive(m: int, seed: int = 3, norm: float = 0.95):
    import torch

    from regioncount import DEQ

    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(m, m, generator=gen, dtype=torch.float64)
    W *= norm / torch.linalg.matrix_norm(W, ord=2)
    return DEQ(W=W, U=torch.randn(m, 1, generator=gen, dtype=torch.float64) * 2,
               b=torch.randn(m, generator=gen, dtype=torch.float64),
               A=torch.randn(2, m, generator=gen, dtype=torch.float64), name=f"contractive-{m}")


def theorem1_with_cycle(m: int):
    from regioncount import DEQ, theorem1_deq

    base = theorem1_deq(m, "a")
    W = base.W.clone()
    W[0, m - 1] = 2.0**-30
    return DEQ(W=W, U=base.U, b=base.b, A=base.A, B=base.B, c=base.c, name=f"theorem1-cycle-{m}")


def main() -> None:
    from bench_common import arguments, best_run, devices, machine_line

    args = arguments(__doc__)

    from regioncount import count_segment

    cases = [(f"contractive W, m = {m}, on [-30, 30]", contractive(m), (-30.0, 30.0)) for m in (16, 64, 128)]
    cases += [(f"Theorem 1 DEQ + one cyclic entry, m = {m}, on [0, 1]", theorem1_with_cycle(m), (0.0, 1.0))
              for m in (8, 10, 12)]
    print(machine_line())
    print()
    print("| case | device | regions | pieces | seconds | method |")
    print("|---|---|---:|---:|---:|---|")
    rows = []
    for device in devices(args.devices):
        for name, model, interval in cases:
            result = best_run(args.repeats, count_segment, model, interval=interval, assume_well_posed=True,
                              max_regions=None, device=device)
            how = result.algorithm.split(";")[-1].strip()
            rows.append({"case": name, "device": device, "regions": result.activation_regions,
                         "pieces": result.linear_pieces, "seconds": result.seconds, "method": result.method,
                         "how": how})
            print(f"| {name} | {device} | {result.activation_regions:,} | {result.linear_pieces:,} | "
                  f"{result.seconds * 1000:.1f} ms | {result.method}: {how} |", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()

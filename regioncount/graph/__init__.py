"""Graph models: directed acyclic graphs of affine and piecewise-linear operators (convolutions, pooling,
residual sums, leaky ReLUs), their float64 walk along a segment, its exact proof and the exact reference walk
(``docs/graphs.md``)."""

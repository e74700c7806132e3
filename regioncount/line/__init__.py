"""Counts along a line: the exact 1-D walks (kernels, breakpoint propagation, general-W pattern walks), their
proofs (static exactness test, forward-error bounds, split and double-double products, a-posteriori proofs),
their cost model, and random chords.
"""

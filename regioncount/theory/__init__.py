"""The paper's mathematics: region-count bounds, the Theorem 1 construction and other nets with known counts, the
DEQ-vs-FFN separation, the steep ramp, and the training experiments.
"""

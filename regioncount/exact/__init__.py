"""Exact rational references: the 1-D counters of FFNs and DEQs in ``Fraction`` arithmetic that every second
opinion and every test compares with.
"""

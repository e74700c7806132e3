"""Exact partitions of a plane slice, a box or all of R^d into activation regions: polygons and polytopes, their
rigorous vertex bounds, and the exact second opinions that settle what float64 cannot.
"""

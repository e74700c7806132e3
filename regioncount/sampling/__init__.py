"""Sampled d-D counts: distinct activation patterns of many points in a box.
"""

"""Counts split into independent tasks and merged exactly, in this process or on Dask.
"""

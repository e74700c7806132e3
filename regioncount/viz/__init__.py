"""PNG figures of partitions, separations and ramps.
"""

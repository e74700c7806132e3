"""The foundations every other part stands on: errors, defaults and tolerances, devices and memory, exact user
numbers, atomic output, where a count looks (domains, segments, boxes, planes), safe magnitudes, packed
activation patterns, exact integer linear algebra, and the result records of every count.
"""

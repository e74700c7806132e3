"""The networks themselves: FFN and DEQ models, their file schema checks, well-posedness certificates, fixed
points, and the trainable ``ReLUDEQ`` module.
"""

"""Models in and out: the v1 JSON format and state_dicts, ONNX graphs, torch.export archives, traced ``torch.nn``
modules, arrays and checkpoint series.
"""

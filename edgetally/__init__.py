"""edgetally runner: camera -> preprocess -> runtime -> decode -> tracker -> counters -> sinks.

Importing this package must stay cheap and must never import torch, tensorflow, nncf,
onnx or the ``converters`` package (tests/test_import_boundary.py enforces it).
"""

__version__ = "0.1.0"

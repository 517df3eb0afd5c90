"""edgetally converters: trained detector -> artifact (model + manifest.json) for a device.

Runs on a workstation or CI. Importing this package is cheap: onnx, onnxruntime and the other
heavy tools are imported inside the functions that use them. ``edge convert`` attaches
``edgetally.cli.convert.convert`` lazily.
"""

from __future__ import annotations

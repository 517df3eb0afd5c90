"""Graph surgery for quantisation: ONNX node selection and splits, TFLite interface rewrites, fx baking."""

"""Calibration data, evaluation, COCO metrics, the accuracy gate and its repair strategies."""

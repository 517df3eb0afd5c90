"""Tracking and counting accuracy benchmark (MOT15 / MOT17) against peers; not shipped to boards."""

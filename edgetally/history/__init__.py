"""Interval counts on the device: bin arithmetic, the SQLite history, reports over it. No numpy."""

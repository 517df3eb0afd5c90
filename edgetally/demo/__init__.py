"""The self-contained demo: a synthetic traffic scene with exact ground truth (numpy + cv2 only)."""

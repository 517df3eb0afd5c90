"""Running as a service: sd_notify (READY, WATCHDOG, STATUS, RELOADING, STOPPING), /healthz and
/metrics, `edge doctor`, `edge bundle` and `edge provision`. Nothing here imports a runtime or cv2
at module import time."""

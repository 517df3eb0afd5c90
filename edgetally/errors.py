"""The runner's small exception hierarchy. The CLI turns each into one clear line and an exit code."""

from __future__ import annotations


class EdgeError(Exception):
    """Base class of every error the runner reports to a user."""

    exit_code = 1


class ConfigError(EdgeError):
    """A config file or command-line option is invalid (exit 2)."""

    exit_code = 2


class UsageError(ConfigError):
    """The command line is inconsistent (exit 2)."""


class ArtifactError(EdgeError):
    """An artifact directory, its manifest or its model file is missing or corrupt."""

    exit_code = 2


class RuntimeLoadError(EdgeError):
    """An inference runtime is not installed or cannot load the model."""


class CameraError(EdgeError):
    """A frame source cannot be opened or has stopped delivering frames. ``retryable``: a fresh
    process could get it going again (a wedged capture backend), as opposed to a source that
    is gone or was given up on."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class BadSourceError(CameraError):
    """The source named by the user does not exist or is not a source at all (a missing file, an
    unknown scheme): a usage error (exit 2), not a camera that may come back."""

    exit_code = 2


class ConversionError(EdgeError):
    """A model conversion failed or its result failed the accuracy gate."""

"""Typed errors raised by the library; the CLI turns them into one-line messages."""


class JaxmlpError(ValueError):
    """Base class of every error jaxmlp raises on bad input."""


class ConfigError(JaxmlpError):
    """A configuration value is unknown, of the wrong type or out of range."""


class DataError(JaxmlpError):
    """A data set is malformed: missing file, bad format, NaN/inf, bad labels, shape mismatch."""


class CheckpointError(JaxmlpError):
    """A checkpoint or run folder is missing, truncated or corrupted."""


class DivergenceError(JaxmlpError):
    """Training produced a non-finite loss."""

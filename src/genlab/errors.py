"""Errors that are the user's to fix. The CLI prints them as one line, without a traceback."""


class GenlabError(Exception):
    """Base class: a mistake in input, data or configuration, with a message that says what to do."""


class DataError(GenlabError):
    """A dataset file is missing, truncated, corrupt or of the wrong shape."""


class RunError(GenlabError):
    """A run directory is missing, incomplete, or incompatible with the request."""


class NonFiniteError(GenlabError):
    """Training produced NaN or Inf; names the step and the metric."""


class ConfigError(GenlabError, ValueError):
    """An option value out of range or inconsistent with another option."""

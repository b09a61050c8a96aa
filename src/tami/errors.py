"""Errors raised for bad user input: the CLI prints them as one line, without a traceback.

Exit codes (the same for every command): 2 for usage and config errors, which are found before any work starts
(:class:`UsageError`), 1 for every other failure while working (:class:`TamiError` and its other subclasses).
"""


class TamiError(Exception):
    """Base class of every error that is the user's to fix; the message says what and how."""

    exit_code = 1


class CheckpointError(TamiError):
    """A weights file cannot be read or does not fit the model it is loaded into."""


class InputError(TamiError, ValueError):
    """An input (video, image, tensor, option) has the wrong kind, shape or content."""


class FetchError(TamiError):
    """Downloading or verifying external data (the photo pool's packages) failed; the message says how to retry."""


class UsageError(InputError):
    """A command line option or config value that cannot work as given (exit code 2)."""

    exit_code = 2


class UnknownNameError(UsageError, KeyError):
    """No registry entry has this name (backbone, preset, metric, flow method, layout); the message lists close
    matches. A ``KeyError`` too, so ``except KeyError`` around a lookup keeps working."""

    def __str__(self) -> str:
        # KeyError would quote the message; it is a sentence, not a key.
        return str(self.args[0]) if self.args else ""


class OptionError(UsageError, TypeError):
    """A keyword option the chosen backbone, metric or flow method does not take; the message lists the valid
    ones. A ``TypeError`` too, like a bad keyword argument to a function."""

"""Errors raised for bad user input: the CLI prints them as one line, without a traceback."""


class TamiError(Exception):
    """Base class of every error that is the user's to fix; the message says what and how."""


class CheckpointError(TamiError):
    """A weights file cannot be read or does not fit the model it is loaded into."""


class InputError(TamiError, ValueError):
    """An input (video, image, tensor, option) has the wrong kind, shape or content."""


class FetchError(TamiError):
    """Downloading or verifying external data (the photo pool's packages) failed; the message says how to retry."""

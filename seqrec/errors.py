"""One exception type for bad input, so the CLI can turn it into a one-line message."""


class SeqrecError(ValueError):
    """Bad input: a missing or corrupt file, a malformed line, an unknown name, an impossible value.

    The message is one line that names the problem (and the file and line where there is one).
    """


class ChecksumError(SeqrecError):
    """A paper data file whose SHA-256 is not the published one (never silently replaced by something else)."""

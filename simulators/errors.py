"""`UserError`: a mistake the user can fix (bad flag value, missing or malformed file).
`Interrupted`: a batch command stopped by Ctrl+C; exit status 130.

The `tickwire` command prints it as one line on stderr, no traceback, and exits 2. It lives in the
lowest package so every layer (simulators <- feed <- dashboard) can raise it.
"""


class UserError(Exception):
    """A user's mistake; str(error) says what was wrong and what to do."""


class Interrupted(Exception):
    """A batch command stopped by Ctrl+C (or SIGTERM) before it finished.

    str(error) says what was left behind: no partial file, or a valid one cut short. The
    `tickwire` command prints it as one line and exits 130 (128 + SIGINT), as shells expect.
    """

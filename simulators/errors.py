"""`UserError`: a mistake the user can fix (bad flag value, missing or malformed file).

The `tickwire` command prints it as one line on stderr, no traceback, and exits 2. It lives in the
lowest package so every layer (simulators <- feed <- dashboard) can raise it.
"""


class UserError(Exception):
    """A user's mistake; str(error) says what was wrong and what to do."""

"""Child processes that do not outlive their parent (the supervisor's workers, the bench's servers
and clients): a parent that is killed, even with SIGKILL, leaves no orphan holding a port or a CPU.
"""

from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child, before exec (`preexec_fn`): SIGTERM it when its parent dies. Linux's
    prctl(PR_SET_PDEATHSIG); elsewhere nothing."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

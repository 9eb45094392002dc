"""A child process that ends with its parent: ``ghostcap triage``'s workers and ``analyze --workers``'s partitions
never go on reading captures nobody will use once the process that started them is gone."""

from __future__ import annotations

import os
import time

PARENT_POLL_S = 0.5  # how often a worker checks that its supervisor is still there


def die_with_parent(parent: int) -> None:
    """End this worker when its supervisor (``parent``) dies, even in the middle of a capture: a daemon thread
    sees the parent pid change (the worker is re-parented) and exits the process. A killed supervisor (SIGKILL, the
    OOM killer) thus never leaves workers analysing captures nobody will use. (Not ``PR_SET_PDEATHSIG``: it
    fires when the supervisor *thread* that started the worker ends, which is not the supervisor's death.)"""
    import threading

    if os.getppid() != parent:  # it died before we got here
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="ghostcap-parent-watch", daemon=True).start()

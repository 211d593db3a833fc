"""Set-up shared by the worker processes qunpulse starts (scoring, word clouds).

Kept to the standard library and :mod:`analytics`: a ``spawn`` worker imports the module
of its initialiser, and should not pay for the server's imports.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading


def exit_with_parent() -> None:
    """In a worker process: leave at once when the parent is gone.

    Killed, the parent could not stop its workers in order, and a worker that ignores
    the service's signals would otherwise live on alone.
    """
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(
            target=_exit_with, args=(parent.sentinel,), name="parent-watch", daemon=True
        ).start()


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(0)


def start_cloud_worker() -> None:
    """Initialise the word cloud process: signals, a watch on the parent, wordcloud.

    The worker outlives runs (``serve``): Ctrl-C reaches the whole process group, but its
    owner stops it in order (``CloudRenderer.close``), or it leaves with its owner.
    """
    from analytics.charts import warm_word_cloud

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent()
    warm_word_cloud()

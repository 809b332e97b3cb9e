"""What the mini task generators share beyond the public task writer: running jobs on threads.

The folder writing itself (all or nothing, reused when its parameters' hash matches) is
:func:`hear_runner.api.build_folder` and the ``write_*`` helpers beside it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from hear_runner.api import (
    params_hash,
    write_metadata,
    write_split,
    write_vocabulary,
    write_wav,
)

__all__ = [
    "params_hash", "run_jobs", "write_metadata", "write_split", "write_vocabulary",
    "write_wav",
]  # fmt: skip


def run_jobs(
    fn: Callable[..., None], jobs: Sequence[tuple[Any, ...]], description: str, progress: bool
) -> None:
    """``fn(*job)`` for every job on threads (the work is in subprocesses or numpy), with a bar.

    The first failure cancels the jobs not yet started and is raised.
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from rich.progress import Progress

    workers = min(32, (os.cpu_count() or 2) + 2)
    with Progress(disable=not progress) as bar, ThreadPoolExecutor(max_workers=workers) as pool:
        task = bar.add_task(description, total=len(jobs))
        futures = [pool.submit(fn, *job) for job in jobs]
        try:
            for future in as_completed(futures):
                future.result()
                bar.advance(task)
        except BaseException:
            for future in futures:
                future.cancel()
            raise

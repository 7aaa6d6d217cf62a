"""The RQ worker class for generation jobs.

Jobs run in the worker process itself (no fork per job), on one event loop and
one Redis pool kept across jobs, with the generation code imported up front:
this takes tens of milliseconds off the time to a reply's first delta. A job
that dies takes its worker with it; ``rq worker-pool`` starts a new one, the
stream reaper ends the reply, and the thread's queue skips the dead job.
"""

from __future__ import annotations

from rq.worker import SimpleWorker

import workers.generation  # noqa: F401 - preload the job's code in the worker


class GenerationWorker(SimpleWorker):
    pass

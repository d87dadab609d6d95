"""Lessons: each module computes the numbers behind a cs231n picture and draws it.

Every lesson has ``run(out_dir, device="auto", data_dir=None, seed=0) -> dict`` returning at least
``"files"`` (paths written) and ``"summary"`` (a few lines). (Minimal registry from the conv branch;
to be merged with the full one.)
"""

LESSONS = {  # name -> module (imported when run)
    "filters": "gpunn.lessons.filters",
}

"""The side-by-side benchmark behind ``benchmarks/compare.py`` (a tool of the repository, not of the book).

Tutorial models and the book's models, same data, same machine, one run; each
model is trained in a fresh Python process of its own.  The package is never
installed and no chapter imports it: ``compare.py`` (beside this folder) and the
tests put ``benchmarks/`` on ``sys.path``.

- :mod:`bench.spec` — what is compared: the rows (:class:`~bench.spec.Entry`:
  how each model is built and trained), the run's :class:`~bench.spec.Settings`,
  the precision (``float32`` / ``bfloat16`` / ``auto``) and where results go.
  Imports no TensorFlow.
- :mod:`bench.worker` — trains, times and evaluates *one* row; run as a script
  (``python benchmarks/bench/worker.py KEY SETTINGS_JSON RESULT``), one process
  per row.  Training goes through :mod:`cnnbook.training`.
- :mod:`bench.report` — the report from the workers' results: ratios, time to
  target, the book's bars (judged and explained), McNemar's test, Markdown.
  Pure Python, no TensorFlow.
- :mod:`bench.runner` — runs the workers one after another and writes
  ``<dataset>-<precision>.json`` and ``.md``.
"""

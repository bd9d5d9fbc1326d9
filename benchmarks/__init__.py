"""veritrain's benchmarks: ``python -m benchmarks [NAME ...]`` (or ``make bench``).

Each benchmark is a module ``benchmarks/<name>.py`` with a ``run() -> dict``
function. The runner writes what it returns to ``benchmarks/results/<name>.json``.
Benchmarks compare against a baseline measured in the same run and report
ratios: absolute times on shared machines are noise.
"""

"""Run benchmarks and write their figures as JSON (see ``benchmarks/__init__.py``)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
# In the order `make bench` runs them; each name is a module of this package.
BENCHMARKS = (
    "gas",
    "onestep",
    "dispute",
    "store",
    "exact",
    "pol",
    "malformed",
    "economics",
    "verify",
    "round",
    "swarm",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: {BENCHMARKS})")
    args = parser.parse_args(argv)
    names = args.names or [n for n in BENCHMARKS if (HERE / f"{n}.py").exists()]
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        if name not in BENCHMARKS:
            parser.error(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        figures = module.run()
        out = RESULTS / f"{name}.json"
        out.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
        print(json.dumps(figures, indent=2, sort_keys=True))
        elapsed = time.perf_counter() - started
        print(f"-> {out.relative_to(HERE.parent)} ({elapsed:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

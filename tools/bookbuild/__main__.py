"""Command line of the book's build tools (what ``make book`` and ``make test`` call).

Run from the repository root with ``tools`` on the path::

    PYTHONPATH=tools python -m bookbuild execute [--all] notebooks/*.ipynb   # run stale chapters in place
    PYTHONPATH=tools python -m bookbuild check notebooks/*.ipynb             # exit 1 if any is stale
    PYTHONPATH=tools python -m bookbuild reached notebooks/05_training.ipynb # the cnnbook definitions it reaches
    PYTHONPATH=tools python -m bookbuild migrate notebooks/*.ipynb           # provenance into the current hash scheme
    PYTHONPATH=tools python -m bookbuild time notebooks/09_ensembles.ipynb   # a float32 timing, outputs kept
    PYTHONPATH=tools python -m bookbuild prepare-ci notebooks OUTDIR         # CI-parameterised copies for nbval
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnnbook import hardware

from .chapters import chapter_paths, ci_parameters, code_cells
from .run import execute, prepare_ci, time_in
from .staleness import is_stale, migrate_hash, reached_definitions


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bookbuild", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("execute", help="execute chapters in place (only stale ones unless --all)")
    ex.add_argument("notebooks", nargs="+")
    ex.add_argument("--all", action="store_true", help="execute even chapters that are up to date")
    ex.add_argument("--ci", action="store_true", help="use each chapter's CI parameters")
    ch = sub.add_parser("check", help="exit 1 if any chapter's stored outputs are stale")
    ch.add_argument("notebooks", nargs="+")
    mi = sub.add_parser("migrate", help="re-stamp fresh chapters' provenance in the current hash scheme (no run)")
    mi.add_argument("notebooks", nargs="+")
    re_ = sub.add_parser("reached", help="list the cnnbook definitions a chapter reaches (what its hash covers)")
    re_.add_argument("notebook")
    ti = sub.add_parser("time", help="time a chapter's full run in another precision; keeps its stored outputs")
    ti.add_argument("notebooks", nargs="+")
    ti.add_argument("--dtype", default="float32", choices=hardware.DTYPES)
    pc = sub.add_parser("prepare-ci", help="write CI-parameterised copies for nbval")
    pc.add_argument("source_dir")
    pc.add_argument("output_dir")
    args = parser.parse_args(argv)

    if args.command == "execute":
        for nb in args.notebooks:
            if args.all or is_stale(nb):
                print(f"executing {nb} ...", flush=True)
                done = execute(nb, parameters=ci_parameters(nb) if args.ci else None, progress=False)
                print(f"  done in {done.metadata['cnnbook']['executed_seconds']} s", flush=True)
            else:
                print(f"up to date: {nb}")
        return 0
    if args.command == "check":
        stale = [nb for nb in args.notebooks if is_stale(nb)]
        for nb in stale:
            print(f"stale: {nb} (re-run: python -m bookbuild execute {nb})")
        return 1 if stale else 0
    if args.command == "migrate":
        failed = 0
        for nb in args.notebooks:
            try:
                print(("migrated: " if migrate_hash(nb) else "already current: ") + str(nb))
            except ValueError as error:
                print(error)
                failed += 1
        return 1 if failed else 0
    if args.command == "time":
        for nb in args.notebooks:
            print(f"timing {nb} in {args.dtype} ...", flush=True)
            print(f"  done in {time_in(nb, args.dtype)['executed_seconds']} s", flush=True)
        return 0
    if args.command == "reached":
        print("\n".join(reached_definitions(code_cells(args.notebook))))
        return 0
    for nb in chapter_paths(args.source_dir):
        print(prepare_ci(nb, Path(args.output_dir) / nb.name))
    return 0


if __name__ == "__main__":
    sys.exit(_main())

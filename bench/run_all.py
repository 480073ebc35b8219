"""Run every bench/bench_*.py in its own process and print one table of figures.

Each script prints `name<TAB>value<TAB>target` lines (a ratio or count against a baseline measured in the same
run) and exits non-zero when a target is missed. This runner never times anything itself.
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    rows, failed = [], []
    state = tempfile.TemporaryDirectory()  # verify's state store: never the user's ~/.flexops/state
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"running {script.name} ...", file=sys.stderr, flush=True)
        env = {**os.environ, "FLEXOPS_STATE_DIR": os.path.join(state.name, script.stem)}
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env)
        figures = [line.split("\t") for line in proc.stdout.splitlines() if line.count("\t") == 2]
        rows += [(script.stem, *f) for f in figures]
        if proc.returncode != 0:
            failed.append(script.name)
            if not figures:
                last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
                rows.append((script.stem, "error", last, ""))
    widths = [max(len(str(r[i])) for r in rows + [("bench", "figure", "value", "target")]) for i in range(4)]
    for row in [("bench", "figure", "value", "target")] + rows:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)))
    if failed:
        print(f"\ntargets missed or errors in: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""What importing JAX costs with each ml_dtypes release: why pyproject.toml caps ml_dtypes.

    python scripts/import_time.py --versions 0.6.0,0.7.0 --out docs/bench/import_<commit>.json
    python scripts/import_time.py --versions 0.6.0 --rounds 2 --out /tmp/imp.json  # a smoke test

Every version is fetched once with ``pip download --no-deps`` (needs PyPI; nothing is
installed) and unpacked into a scratch folder that goes first on ``PYTHONPATH``, so every
variant runs this environment's own Python, NumPy, jaxlib and JAX and differs only in
ml_dtypes. Each round runs, in fresh processes and interleaved over the variants:
``import ml_dtypes``, and the floor of any JAX program, ``import jax; jax.numpy.zeros(1)``
(the same command as ``jaxmlp bench --e2e``'s floor). Wall time from spawn to exit; one
untimed run of every case first (the OS file cache warm for all alike). Each process
reports the ml_dtypes and NumPy it imported, so a variant that fell back to the installed
release is caught.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

CASES = {
    "import ml_dtypes": "import ml_dtypes",
    "import jax; jax.numpy.zeros(1)": "import jax; jax.numpy.zeros(1)",
}
REPORT = "; import ml_dtypes, numpy; print(ml_dtypes.__version__, numpy.__version__)"


def fetch(version: str, where: Path) -> Path:
    """ml_dtypes ``version``'s wheel for this Python, unpacked into ``where/version``."""
    dest = where / version
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary=:all:", f"ml_dtypes=={version}", "-d", str(where / "wheels")],
                   check=True)
    wheel = next((where / "wheels").glob(f"ml_dtypes-{version}-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        z.extractall(dest)
    return dest


def timed(code: str, path: Path | None) -> tuple[float, str]:
    env = None if path is None else dict(os.environ, PYTHONPATH=str(path))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code + REPORT], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return time.perf_counter() - t0, " ".join(out[-2:])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--versions", required=True, help="comma list of ml_dtypes releases")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from jaxmlp.bench.machine import machine_info
    meta = {"argv": list(argv if argv is not None else sys.argv[1:]), "rounds": a.rounds,
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "doc": __doc__.strip()}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {v: fetch(v, Path(tmp)) for v in a.versions.split(",")}
        rows = {(v, c): {"ml_dtypes": v, "case": c, "wall_s": []} for v in paths for c in CASES}
        for v, path in paths.items():  # untimed: the OS file cache warm for every variant
            for c, code in CASES.items():
                _, seen = timed(code, path)
                if seen.split()[0] != v:
                    raise SystemExit(f"error: the {v} variant imported ml_dtypes {seen}")
                rows[v, c]["numpy"] = seen.split()[1]
        for r in range(a.rounds):
            for v, path in paths.items():
                for c, code in CASES.items():
                    wall, _ = timed(code, path)
                    rows[v, c]["wall_s"].append(wall)
            print(f"round {r + 1}/{a.rounds} done", flush=True)
    meta["machine"] = machine_info()
    from jaxmlp.bench.raw import write_report
    write_report(a.out, {"meta": meta, "rows": list(rows.values())})
    for row in rows.values():
        w = sorted(row["wall_s"])
        print(f"ml_dtypes {row['ml_dtypes']:8s} {row['case']:34s} median {w[len(w) // 2]:.3f} s")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

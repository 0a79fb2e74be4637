"""Run every study in ``experiments/`` and refresh the README's results tables.

    python scripts/run_experiments.py            # full runs (minutes each on a 2-core CPU)
    python scripts/run_experiments.py --quick    # seconds each; README left alone unless --readme
    python scripts/run_experiments.py --only temperature,relu_x2
    python scripts/run_experiments.py --readme-only   # re-render the README from existing results

Each study writes ``summary.json`` into ``experiments/out/<name>/``; this script rewrites the
text between ``<!-- results:<name> -->`` and ``<!-- /results:<name> -->`` in
``experiments/README.md`` from those files (headline, tables, run settings), so the README's
numbers always come from a run. After a full run it also copies the figures to
``experiments/figures/`` (the out folder is git-ignored).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXP = ROOT / "experiments"
README = EXP / "README.md"
FIGURES = EXP / "figures"
STUDIES = ["computation_graph", "perceptron_xor", "relu_x2", "temperature", "width_mup",
           "regression_classification", "distillation"]


def load_study(name: str):
    """Import ``experiments/<name>.py`` as a module (experiments/ is not a package)."""
    if str(EXP) not in sys.path:
        sys.path.insert(0, str(EXP))
    spec = importlib.util.spec_from_file_location(f"experiments_{name}", EXP / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def markdown_table(columns, rows) -> str:
    esc = lambda c: str(c).replace("|", "\\|")
    lines = ["| " + " | ".join(esc(c) for c in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render(summary: dict) -> str:
    """The README block of one study from its summary.json."""
    parts = []
    mode = "quick" if summary.get("quick") else "full"
    cmd = f"python experiments/{summary['name']}.py" + (" --quick" if summary.get("quick") else "")
    parts.append(f"Measured ({mode} run, {summary.get('wall_s', '?')} s, `{cmd}`): "
                 f"**{summary['headline']}**")
    for t in summary.get("tables") or [summary["table"]]:
        if t.get("title"):
            parts.append(f"*{t['title']}*")
        parts.append(markdown_table(t["columns"], t["rows"]))
    figs = ", ".join(f"![{f}](figures/{summary['name']}__{f})" for f in summary.get("figures", []))
    if figs:
        parts.append(figs)
    return "\n\n".join(parts)


def update_readme(names, out_root: Path, readme: Path = README) -> list[str]:
    """Replace each study's marker block with its rendered results. Returns names updated."""
    text = readme.read_text()
    done = []
    for name in names:
        path = out_root / name / "summary.json"
        if not path.exists():
            print(f"no results for {name} ({path}); README block left as is")
            continue
        summary = json.loads(path.read_text())
        start, end = f"<!-- results:{name} -->", f"<!-- /results:{name} -->"
        pat = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
        if not pat.search(text):
            print(f"README has no {start} block; skipped")
            continue
        text = pat.sub(lambda m: f"{start}\n{render(summary)}\n{end}", text)
        done.append(name)
    readme.write_text(text)
    return done


def copy_figures(names, out_root: Path) -> None:
    FIGURES.mkdir(exist_ok=True)
    for name in names:
        path = out_root / name / "summary.json"
        if not path.exists():
            continue
        for f in json.loads(path.read_text()).get("figures", []):
            src = out_root / name / f
            if src.exists():
                shutil.copyfile(src, FIGURES / f"{name}__{f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="quick mode of every study")
    p.add_argument("--only", default="", help="comma list of studies (default: all)")
    p.add_argument("--out-root", default=str(EXP / "out"), help="where studies write")
    p.add_argument("--readme", action="store_true",
                   help="also rewrite the README after a --quick run (full runs always do)")
    p.add_argument("--readme-only", action="store_true", help="only re-render the README")
    args = p.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or STUDIES
    unknown = sorted(set(names) - set(STUDIES))
    if unknown:
        p.error(f"unknown studies: {', '.join(unknown)}")
    out_root = Path(args.out_root)
    failed = []
    if not args.readme_only:
        for name in names:
            t0 = time.time()
            print(f"=== {name} ({'quick' if args.quick else 'full'})", flush=True)
            try:
                load_study(name).main((["--quick"] if args.quick else []) +
                                      ["--out", str(out_root / name)])
            except Exception as e:  # keep going; report at the end
                print(f"!!! {name} failed: {type(e).__name__}: {e}")
                failed.append(name)
            print(f"=== {name} done in {time.time() - t0:.1f} s", flush=True)
    ok = [n for n in names if n not in failed]
    if args.readme_only or not args.quick or args.readme:
        if not args.quick and not args.readme_only:
            copy_figures(ok, out_root)
        print("README blocks updated:", ", ".join(update_readme(ok, out_root)) or "none")
    if failed:
        print("failed:", ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

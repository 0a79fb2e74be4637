"""The size-threshold tables (``scripts/thresholds.py``'s results) as markdown: each rule's
score on the weight-gradient products, whole training runs and short-run compiles (pure
Python)."""
from __future__ import annotations

from jaxmlp.bench.tables_md import DASH, md


def thresholds(rep: dict) -> str:
    """``scripts/thresholds.py``: per shape, the rule's choice and each path's train seconds
    (MATERIALISE_MAX); compile and epoch seconds of each way and the rule's verdict at every
    run length (SHORT_RUN_FLOPS); each with its score."""
    meta = rep["meta"]
    rules = meta.get("rescored") or meta  # the rules the picks below are scored for
    out = [f"Rules scored: `materialises`: {rules.get('materialise_rule', DASH)} "
           f"`compiles_short`: {rules.get('short_run_rule', DASH)}\n"]
    out += _products(rep.get("products", []), meta, rules)
    out += _whole_runs(rep.get("materialise", []), meta)
    out += _short_runs(rep.get("short_run", []), meta, rules)
    return "\n".join(out)


def _products(prods: list, meta: dict, rules: dict) -> list[str]:
    """The weight-gradient products: score, noise-aware score, table."""
    out = []
    if prods:
        ok = sum(c["ok"] for c in prods)
        worst = max(prods, key=lambda c: c["rule_over_other"])
        old = [c["measured_rule"] for c in prods if c.get("measured_rule")]
        if old and _old_rule(meta, "products") != rules.get("materialise_rule"):
            out.append(f"The rule this was measured with ({_old_rule(meta, 'products')}) "
                       f"picked the faster product for {sum(o['ok'] for o in old)}/{len(old)} "
                       f"shapes; worst case {max(o['rule_over_other'] for o in old):.2f}x.\n")
        noise = _beyond_noise(prods, "the two paths differ by more than their noise (a "
                                     "program's second-best call over its best)", "shapes")
        out.append(f"Weight-gradient products, the rule's decision unit: the path "
                   f"`jaxmlp.nn.materialises` picks is the faster one for **{ok}/{len(prods)}** "
                   f"shapes ({100 * ok / len(prods):.0f}%); worst case "
                   f"{worst['rule_over_other']:.2f}x the other path (batch {worst['batch']}, "
                   f"{worst['fan_in']} x {worst['fan_out']}).{noise} Microseconds per product "
                   f"inside a scan of fresh operands, best of the calls, the two paths "
                   f"interleaved.\n")
        out.append(md(["batch", "fan_in x fan_out", "materialised us", "XLA product us",
                       "rule picks", "rule / other", "right"],
                      [[str(c["batch"]), f"{c['fan_in']} x {c['fan_out']}",
                        f"{c['us']['materialised']:.2f}", f"{c['us']['xla']:.2f}",
                        c["rule_picks"], f"{c['rule_over_other']:.2f}",
                        "yes" if c["ok"] else "**no**"] for c in prods]))
    return out


def _whole_runs(mat: list, meta: dict) -> list[str]:
    """Whole training runs with every path: the rule's score within its spread, table."""
    out = []
    if mat:
        rows = []
        for c in mat:
            t = c["train_s"]
            rows.append([str(c["width"]), str(c["depth"]), str(c["batch"]), c["rule_is"],
                         f"{t['materialised']:.4f}", f"{t['xla']:.4f}",
                         f"{t['mixed']:.4f}" if "mixed" in t else DASH,
                         f"{c['rule_over_best_other']:.3f}",
                         f"{100 * c['rule_spread']:.1f}%",
                         "yes" if c["strict"] else "within spread" if c["within_spread"] else "**no**"])
        strict = sum(c["strict"] for c in mat)
        loose = sum(c["within_spread"] for c in mat)
        worst = max(mat, key=lambda c: c["rule_over_best_other"])
        out.append(f"\nWhole training runs (`jaxmlp.fit`), every layer materialised, every layer "
                   f"XLA's product, and the rule per layer as the code then had it "
                   f"(materialised where {_old_rule(meta, 'materialise')}): the rule's "
                   f"training time is "
                   f"at most the faster alternative's in **{strict}/{len(mat)}** shapes "
                   f"({100 * strict / len(mat):.0f}%), {loose}/{len(mat)} "
                   f"({100 * loose / len(mat):.0f}%) within the spread of "
                   f"{_runs_word(len(mat[0]['runs']['rule']))} of its own "
                   f"program; worst case {worst['rule_over_best_other']:.3f}x the faster one "
                   f"(width {worst['width']}, depth {worst['depth']}, batch {worst['batch']})."
                   + _whole_beyond_noise(mat)
                   + "".join(_uniform_score(mat, p) for p in ("materialised", "xla")) + "\n")
        out.append(md(["width", "depth", "batch", "rule gives", "all materialised s",
                       "all XLA product s", "mixed (rule) s", "rule / best other",
                       "rule's spread", "rule picks the faster"], rows))
    return out


def _runs_word(n: int) -> str:
    return {1: "one run", 2: "two runs", 3: "three runs"}.get(n, f"{n} runs")


def _whole_beyond_noise(mat: list) -> str:
    """The rule's score over the whole runs whose repeats separate it from the fastest other."""
    if not all("tie" in c for c in mat):
        return ""
    sep = [c for c in mat if not c["tie"]]
    ok = sum(c["strict"] for c in sep)
    reps = len(mat[0]["runs"]["rule"])
    return (f" Where the rule's {reps} runs and the fastest other path's do not overlap, "
            f"{len(sep)} shapes, the rule picks the faster in **{ok}/{len(sep)}**"
            + (f" ({100 * ok / len(sep):.0f}%)" if sep else "")
            + f"; the other {len(mat) - len(sep)} are ties within that noise.")


def _uniform_score(mat: list, path: str) -> str:
    """How one path for every layer would score on the same whole runs (same two criteria,
    and, with three or more runs a path, beyond noise: the shapes where its runs and the
    fastest other path's do not overlap)."""
    strict = loose = separable = right = 0
    for c in mat:
        t, runs = c["train_s"], c["runs"][path]
        best = min((k for k in t if k != path), key=t.get)
        other = t[best]
        spread = max(runs) / min(runs) - 1.0 if len(runs) > 1 else 0.0
        strict += t[path] <= other
        loose += t[path] <= other * (1 + spread)
        theirs = c["runs"]["rule" if best == "mixed" else best]
        if max(runs) < min(theirs) or max(theirs) < min(runs):
            separable += 1
            right += t[path] <= other
    name = {"materialised": "every layer materialised", "xla": "every layer on XLA's product"}
    noise = (f"; where its runs and the fastest other path's do not overlap ({separable} "
             f"shapes) it is the faster in {right}/{separable}"
             if len(mat[0]["runs"][path]) >= 3 and separable else "")
    return (f" As a rule for all shapes, {name[path]} would score {strict}/{len(mat)} strict and "
            f"{loose}/{len(mat)} within its own spread{noise}.")


def _short_runs(sr: list, meta: dict, rules: dict) -> list[str]:
    """Short-run compiles: the rule's score over run lengths, table."""
    out = []
    if sr:
        old = [c for s in sr for c in (s.get("measured_rule") or {}).get("cases", [])]
        if old and _old_rule(meta, "short_run") != rules.get("short_run_rule"):
            out.append(f"\nThe short-run rule this was measured with "
                       f"({_old_rule(meta, 'short_run')}) had the smaller total in "
                       f"{sum(o['ok'] for o in old)}/{len(old)} cases; worst case "
                       f"{max(o['rule_over_other'] for o in old):.2f}x.")
        cases = [(s, c) for s in sr for c in s["cases"]]
        ok = sum(c["ok"] for _, c in cases)
        noise = _beyond_noise([c for _, c in cases], "the two ways' totals do not overlap "
                              "over the repeated measurements", "cases")
        worst = max(cases, key=lambda sc: sc[1]["rule_over_other"])
        lengths = [f"{F:.0e}" for F in meta["run_flops"]]
        rows = []
        for s in sr:
            w = s["ways"]
            rows.append([str(s["width"]), str(s["depth"]), str(s["batch"]),
                         f"{w['short']['compile_s']:.2f}", f"{w['full']['compile_s']:.2f}",
                         f"{w['short']['epoch_s'] / max(w['full']['epoch_s'], 1e-12):.2f}",
                         " ".join("y" if c["ok"] else "**n**" for c in s["cases"])])
        out.append(f"\nShort-run compiles: over {len(sr)} shapes x "
                   f"{len(lengths)} run lengths ({', '.join(lengths)} training FLOPs), the way "
                   f"the rule picks has the smaller total (compile + run) in **{ok}/{len(cases)}** "
                   f"cases ({100 * ok / len(cases):.0f}%); worst case "
                   f"{worst[1]['rule_over_other']:.2f}x the other way's total (width "
                   f"{worst[0]['width']}, depth {worst[0]['depth']}, batch {worst[0]['batch']}, "
                   f"{worst[1]['run_flops']:.0e} FLOPs).{noise} A 2-model sweep per shape; "
                   f"totals at other run lengths are compile + epochs x the measured seconds "
                   f"per epoch (the best of the repeats).\n")
        out.append(md(["width", "depth", "batch", "short-run compile s", "full compile s",
                       "short-run step / full step", "rule right at " + ", ".join(lengths)], rows))
    return out


def _beyond_noise(cases: list, where: str, what: str) -> str:
    """The score over the ``cases`` the measurements separate (``tie`` False), as a sentence
    (empty where no case was measured with its noise)."""
    if not any("tie" in c for c in cases):
        return ""
    decided = [c for c in cases if "tie" in c and not c["tie"]]
    right = sum(c["ok"] for c in decided)
    pct = f" ({100 * right / len(decided):.0f}%)" if decided else ""
    return (f" Where {where}, {len(decided)} {what}, the rule picks the faster in "
            f"**{right}/{len(decided)}**{pct}; the other {len(cases) - len(decided)} are ties "
            f"within that noise.")


def _old_rule(meta: dict, part: str) -> str:
    """The rule a part of a thresholds run was measured with, in words."""
    r = (meta.get("part_rules") or {}).get(part) or meta
    if part in ("products", "materialise"):
        return r.get("materialise_rule") or f"fan_in * fan_out <= {r['MATERIALISE_MAX']}"
    return r.get("short_run_rule") or f"estimated training FLOPs <= {r['SHORT_RUN_FLOPS']:.0e}"

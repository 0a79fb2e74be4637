"""Sweep planning: which models share a compiled program, and how they sit in its state.

A program holds its models in *groups*: each group is one train state stacked along a leading
model axis, every model of it at the group's layer sizes. Two layouts:

- padded (``"pad"``): one group at the widest model's sizes; narrower models are embedded
  exactly with per-hidden-unit masks (their padded weights start at zero and get zero
  gradient). Widths further apart than ``max_pad_ratio`` go to separate programs (buckets).
- packed (``"pack"``): one group per distinct width, each at its true width, all groups of one
  program stepping inside the same scans (``jaxmlp.training.run_chunk`` on a tuple of groups), so
  a narrow model costs its own width and the whole grid is still one compile. A packed group
  may also hold neighbouring widths padded to its widest (what ``"auto"`` weighs: every group
  adds compile time and per-step overhead, ``choose_packing``).

Either way the models sharing a seed share their data order: a *slot* is a set of models that
train on the same batches (``k_g`` models of group ``g`` in every slot), and the slots are
``vmap``-ed and sharded over the devices. This module only plans (host-side, no compiles).
"""
from __future__ import annotations

import itertools
import math
from typing import NamedTuple, Sequence

from jaxmlp.config import PACKING_NAMES as PACKINGS
from jaxmlp.errors import ConfigError
from jaxmlp.nn import training_flops_estimate, weight_counts


def width_buckets(widths: Sequence[int], max_pad_ratio: float) -> list[list[int]]:
    """Group distinct widths so that within a bucket max/min <= max_pad_ratio (greedy, sorted)."""
    buckets: list[list[int]] = []
    for w in sorted(set(widths)):
        if buckets and w / buckets[-1][0] <= max_pad_ratio:
            buckets[-1].append(w)
        else:
            buckets.append([w])
    return buckets


def order_share(members: list[dict], n_dev: int) -> int:
    """How many consecutive models of a padded program share one data order.

    Models with the same seed train on the same batches. When ``members`` come in equal runs
    of one seed (``sweep`` puts the seed axis outermost), each run is split into as few
    groups as lets the groups divide over the devices (``n_dev``: the model axis; on a 2-D mesh
    each group's batch is then split over the data axis; ``jaxmlp.training.jit_chunk``);
    otherwise 1 (every model gets its own order, the model axis padded to the devices).
    """
    seeds = [int(m["seed"]) for m in members]
    runs = [len(list(g)) for _, g in itertools.groupby(seeds)]
    k = runs[0]
    if any(r != k for r in runs) or len(set(seeds)) != len(runs):
        return 1
    return next((s for s in range(k, 1, -1) if k % s == 0 and (len(runs) * k // s) % n_dev == 0), 1)


def widest(sizes: Sequence[tuple]) -> tuple:
    """Layer by layer, the largest of several models' layer sizes (same depth)."""
    return tuple(max(s[l] for s in sizes) for l in range(len(sizes[0])))


class Layout(NamedTuple):
    """Where a program's models sit.

    Attributes:
        sizes: per group, the layer sizes ``(d_in, h_1, ..., d_out)`` its state is built at.
        takes: per group, the program-member index of each model slot of its stacked state,
            slot-major (``ks[g]`` consecutive entries per slot); slots added to divide the
            devices repeat the last real ones.
        ks: per group, models per slot (the models of a slot share one data order).
        packed: one group per width stepping together (``jaxmlp.training.jit_chunk`` with a tuple), or
            one padded group (``jaxmlp.training.jit_chunk`` with an int).
    """
    sizes: tuple
    takes: tuple
    ks: tuple
    packed: bool

    @property
    def widest(self) -> tuple:
        """Layer by layer, the largest size of any group (the shape every model is drawn at)."""
        return widest(self.sizes)

    @property
    def n_slots(self) -> int:
        return len(self.takes[0]) // self.ks[0]

    @property
    def vmapped(self):
        """``jaxmlp.training.jit_chunk``'s ``vmapped`` argument for this layout."""
        return self.ks if self.packed else self.ks[0]

    def slots(self) -> list[tuple[int, int]]:
        """``(group, index in the group)`` of every model in the order of the chunk's metrics
        (slot-major; the groups of a slot side by side)."""
        return [(g, s * k + j) for s in range(self.n_slots)
                for g, k in enumerate(self.ks) for j in range(k)]

    def slot_seeds(self, members: list[dict]) -> list[int]:
        """The seed (data order) of every slot."""
        return [int(members[self.takes[0][s * self.ks[0]]]["seed"]) for s in range(self.n_slots)]

    def group_of(self) -> dict[int, int]:
        """The group of every program member."""
        return {i: g for g, take in enumerate(self.takes) for i in take}

    def computed_weights(self) -> int:
        """Weights of every model slot at its group's sizes (repeats included)."""
        return sum(len(t) * sum(weight_counts(sz)) for t, sz in zip(self.takes, self.sizes))


def pad_layout(members: list[dict], member_sizes: list, n_dev: int, data_devices: int) -> Layout:
    """All models in one group at the widest sizes, ``order_share`` models per slot, the last
    model repeated until the slots divide the devices (the same on a 2-D mesh: its model axis
    has ``n_dev`` devices, each slot's batch split over ``data_devices``)."""
    n = len(members)
    share = order_share(members, n_dev)
    take = tuple(range(n)) + (n - 1,) * ((-n) % n_dev)
    sizes = widest(member_sizes)
    return Layout((sizes,), (take,), (share,), False)


def distinct_sizes(member_sizes: list) -> list:
    """The distinct layer sizes of a program's members, narrowest (fewest weights) first."""
    return sorted(set(member_sizes), key=lambda s: (sum(weight_counts(s)), s))


def pack_layout(members: list[dict], member_sizes: list, n_dev: int, data_devices: int,
                partition: list | None = None) -> Layout | None:
    """One group per part of ``partition`` (lists of distinct member sizes; default: one part
    per size), each at its widest member's sizes (narrower members padded and masked); a slot
    holds models of one seed, the same number of each group in every slot (each seed's models
    split into as few slots as divide the devices, or the last slot repeated). ``None`` where
    that cannot be: a 2-D mesh, one group only, or seeds that are not side by side with the
    same models each."""
    parts = partition or [[sz] for sz in distinct_sizes(member_sizes)]
    if data_devices > 1 or len(parts) < 2:
        return None
    seeds = [int(m["seed"]) for m in members]
    runs = [list(g) for _, g in itertools.groupby(range(len(members)), key=lambda i: seeds[i])]
    if len({seeds[r[0]] for r in runs}) != len(runs):
        return None
    per_run = [[[i for i in r if member_sizes[i] in part] for part in parts] for r in runs]
    counts = [len(g) for g in per_run[0]]
    if any([len(g) for g in pr] != counts for pr in per_run):
        return None
    common = math.gcd(*counts)
    # slots per seed: the fewest that waste the fewest model slots on repeats
    split = min((s for s in range(1, common + 1) if common % s == 0),
                key=lambda s: (-(-len(runs) * s // n_dev) * n_dev / s, s))
    ks = tuple(c // split for c in counts)
    slots = [[g[p * k:(p + 1) * k] for g, k in zip(pr, ks)] for pr in per_run for p in range(split)]
    slots += [slots[-1]] * ((-len(slots)) % n_dev)
    takes = tuple(tuple(i for sl in slots for i in sl[g]) for g in range(len(parts)))
    sizes = tuple(tuple(max(col) for col in zip(*part)) for part in parts)
    return Layout(sizes, takes, ks, True)


def masked(layout: Layout, member_sizes: list) -> bool:
    """Whether some group holds models narrower than itself (unit masks needed)."""
    return any(member_sizes[i] != sz for take, sz in zip(layout.takes, layout.sizes) for i in take)


def flop_efficiency(layout: Layout, member_sizes: list) -> tuple[list[float], float]:
    """Useful matmul FLOPs (each model at its true sizes) over FLOPs computed: per program
    member (its own sizes over its group's) and for the whole program (device repeats count
    as computed, not useful)."""
    group_of = layout.group_of()
    own = [sum(weight_counts(s)) for s in member_sizes]
    per_model = [own[i] / sum(weight_counts(layout.sizes[group_of[i]]))
                 for i in range(len(member_sizes))]
    return per_model, sum(own) / layout.computed_weights()


class Plan(NamedTuple):
    """A sweep's programs: per program the member indices (grid order, seeds side by side)
    and their ``Layout``; the strategy's name; how the packing was chosen (``choice["plan"]``:
    "pad" or the packed groups' widths, per depth when the sweep has several: what a resumed
    sweep passes as ``packing``)."""
    programs: list
    strategy: str
    choice: dict


def depth_of(sizes) -> int:
    """The number of hidden layers of layer sizes ``(d_in, h_1, ..., d_out)``."""
    return len(sizes) - 2


def width_of(sizes):
    """The width a plan buckets and packs a model by: its first hidden size (None without
    hidden layers)."""
    return sizes[1] if len(sizes) > 2 else None


def plan_programs(members: list[dict], member_sizes: list, *, packing, max_pad_ratio: float,
                  n_dev: int, data_devices: int, n_train: int, epochs: int,
                  batches: int = 1, cached: bool = False) -> Plan:
    """Which models share a program and how (module docstring). Models of different depths
    never share a program: each depth is planned on its own (strategy "depth" when there are
    several; ``packing`` may then map ``str(depth)`` to each depth's packing, as a resumed
    sweep's ``choice["plan"]`` does). ``packing``: "pad" (padded programs, widths bucketed by
    ``max_pad_ratio``), "pack" (one packed program, one group per width), "auto"
    (``choose_packing``: the cheaper of the padded programs and the packed programs that group
    neighbouring widths; ``batches``: optimizer steps per epoch, ``cached``: a persistent
    compile cache is on), or the packed groups as lists of widths."""
    by_depth: dict[int, list[int]] = {}
    for i, sz in enumerate(member_sizes):
        by_depth.setdefault(depth_of(sz), []).append(i)
    kw = dict(max_pad_ratio=max_pad_ratio, n_dev=n_dev, data_devices=data_devices,
              n_train=n_train, epochs=epochs, batches=batches, cached=cached)
    plans = {d: _plan_depth([members[i] for i in idx], [member_sizes[i] for i in idx],
                            packing=_packing_for(packing, d), **kw)
             for d, idx in sorted(by_depth.items())}
    if len(plans) == 1:
        return next(iter(plans.values()))
    programs = [([by_depth[d][j] for j in idx], lay)
                for d, p in plans.items() for idx, lay in p.programs]
    choice = {"packing": packing if isinstance(packing, str) else "groups",
              "plan": {str(d): p.choice["plan"] for d, p in plans.items()},
              "by_depth": {str(d): p.choice for d, p in plans.items()}}
    return Plan(programs, "depth", choice)


def _packing_for(packing, depth: int):
    """The packing of one depth: ``packing`` itself, or its entry for the depth (a mapping)."""
    if not isinstance(packing, dict):
        return packing
    if str(depth) not in packing:
        raise ConfigError(f"packing {packing!r} has no entry for depth {depth}")
    return packing[str(depth)]


def _plan_depth(members: list[dict], member_sizes: list, *, packing, max_pad_ratio: float,
                n_dev: int, data_devices: int, n_train: int, epochs: int, batches: int,
                cached: bool) -> Plan:
    """``plan_programs`` for models of one depth."""
    explicit = not isinstance(packing, str)
    if not explicit and packing not in PACKINGS:
        raise ConfigError(f"packing must be one of {', '.join(PACKINGS)}, got {packing!r}")
    if data_devices > 1 and (explicit or packing == "pack"):
        raise ConfigError("packing by width needs a 1-D model mesh; use packing pad with "
                          "data devices")
    rank = {sd: r for r, sd in enumerate(dict.fromkeys(m["seed"] for m in members))}
    by_seed = lambda ids: sorted(ids, key=lambda i: rank[members[i]["seed"]])  # stable
    layout_of = lambda make, idx, *a: make([members[i] for i in idx],
                                           [member_sizes[i] for i in idx], n_dev, data_devices, *a)
    widths = [width_of(sz) for sz in member_sizes]
    buckets = [[None]] if widths[0] is None else width_buckets(widths, max_pad_ratio)
    pad = [(idx, layout_of(pad_layout, idx)) for idx in
           (by_seed([i for i, w in enumerate(widths) if w in b]) for b in buckets)]
    everyone = by_seed(range(len(members)))
    choice: dict = {"packing": packing if not explicit else "groups"}
    packed = None
    if explicit and len(packing) == 1:  # one group: one padded program
        _sizes_of_groups(packing, member_sizes)
        pad = [(everyone, layout_of(pad_layout, everyone))]
    elif explicit:
        packed = layout_of(pack_layout, everyone, _sizes_of_groups(packing, member_sizes))
    elif packing == "pack":
        packed = layout_of(pack_layout, everyone)
    elif packing == "auto" and data_devices == 1:
        cands = [layout_of(pack_layout, everyone, part)
                 for part in contiguous_partitions(distinct_sizes(member_sizes))]
        packed, est = choose_packing([lay for _, lay in pad], [c for c in cands if c],
                                     n_train, epochs, epochs * batches, cached)
        choice.update(est)
    if packed is not None:
        groups = [sorted({int(widths[everyone[i]]) for i in t}) for t in packed.takes]
        return Plan([(everyone, packed)], "pack", dict(choice, chosen="pack", plan=groups))
    choice.update(chosen="pad", plan="pad")
    if len(set(widths)) == 1:
        return Plan(pad, "single", choice)
    name = "pad" if len(pad) == 1 else ("group" if all(len(b) == 1 for b in buckets) else "bucket")
    return Plan(pad, name, choice)


def _sizes_of_groups(groups, member_sizes: list) -> list:
    """Packed groups given as lists of widths, as lists of member sizes (each width once)."""
    size_of = {width_of(sz): sz for sz in member_sizes}
    flat = [w for g in groups for w in g]
    if (any(not isinstance(g, (list, tuple)) or not g for g in groups)
            or sorted(flat, key=str) != sorted(size_of, key=str)):
        raise ConfigError(f"packing groups {groups!r} must split the sweep's widths "
                          f"{sorted(size_of, key=str)} into non-empty lists, each width once")
    return [[size_of[w] for w in g] for g in groups]


def contiguous_partitions(sizes: list, most: int = 10) -> list:
    """The ways of cutting ``sizes`` (in order) into at least two runs of neighbours; with more
    than ``most`` sizes only the one with every size on its own."""
    if len(sizes) > most:
        return [[[s] for s in sizes]]
    out = []
    for cuts in itertools.product((False, True), repeat=len(sizes) - 1):
        if any(cuts):
            parts, cur = [], [sizes[0]]
            for s, cut in zip(sizes[1:], cuts):
                if cut:
                    parts.append(cur)
                    cur = []
                cur.append(s)
            out.append(parts + [cur])
    return out


# A plan's estimated cost (``estimated_cost``) in FLOPs of training work (6 per weight, example
# and epoch, every model slot at its group's sizes), plus what programs and groups cost beyond
# their FLOPs, as the FLOPs these sweeps train in the same time (~150-250 GFLOP/s on the 2-core
# CPU). Fitted to the measured compile + run of sweeps padded and packed in every grouping
# ("Packing widths" in `git show 77c33ef:BENCHMARKS.md`): each group adds ~0.35-0.7 s of
# tracing and compile (more with per-epoch evaluation and on several devices) and ~30-40 small
# ops to every step, which keep a narrow group from running faster than ``GROUP_STEP_FLOPS`` a
# step. With a persistent compile cache (``jaxmlp.use_compile_cache``) the XLA compile of a
# repeated sweep is skipped and a group costs its tracing only.
PROGRAM_FLOPS = (1.0e11, 4.0e10)   # another program (chunk, initialisation, metrics): cold, cached
GROUP_FLOPS = (9.0e10, 2.0e10)     # another group of a program: cold, cached
GROUP_STEP_FLOPS = 5.0e7           # the least a group's step costs, whatever its size


def estimated_cost(layouts: list, n_train: int, epochs: int, steps: int,
                   cached: bool = False) -> float:
    """The programs of a plan (their layouts) in FLOP-equivalents; ``steps``: optimizer steps
    of the run (epochs x batches per epoch); ``cached``: a persistent compile cache is on."""
    cost = PROGRAM_FLOPS[cached] * len(layouts)
    for lay in layouts:
        for take, sz in zip(lay.takes, lay.sizes):
            work = training_flops_estimate(sz, n_train, epochs, len(take))
            cost += GROUP_FLOPS[cached] + max(work, GROUP_STEP_FLOPS * steps)
    return cost


def choose_packing(pad: list, packed: list, n_train: int, epochs: int, steps: int,
                   cached: bool = False):
    """The cheapest (``estimated_cost``) of the padded plan (``pad``: its layouts) and the
    one-program ``packed`` layouts. Returns ``(packed layout or None, estimates)``."""
    cost = lambda lays: estimated_cost(lays, n_train, epochs, steps, cached)
    best, best_cost = None, cost(pad)
    est = {"pad_cost_gflop": best_cost / 1e9, "compile_cache": cached}
    for lay in packed:
        if cost([lay]) < best_cost:
            best, best_cost = lay, cost([lay])
    est["chosen_cost_gflop"] = best_cost / 1e9
    return best, est

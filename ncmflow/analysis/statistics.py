"""Statistics of the barrier comparison: plain functions over ``BarrierRow``s.

Only ``selected`` rows count (per site, the lowest converged saddle of its paths; see
``ncmflow.workflows.documents.mark_selected``). Two kinds of numbers:

- the distribution of the forward barrier per (potential, model) over sites: n, mean, sample
  standard deviation (ddof=1), min, max;
- cPAN − bare paired site by site (a bare and a cPAN site with the same index share the slab, the
  hopping Ni and the vacancy; the cPAN is the only difference), per potential and pooled, for the
  forward barrier, the reverse barrier and the reaction energy. Per NEB, forward = reverse +
  reaction (E_saddle − E_start = (E_saddle − E_end) + (E_end − E_start)), so the two last say
  which part of the forward-barrier change the coating makes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ncmflow.workflows.documents import PAPER_BARRIERS, BarrierRow

MODEL_ORDER = ("bulk", "bare", "cpan")  # as ncmflow.structures.MODELS (not imported: rdkit is heavy)
QUANTITIES = ("forward_barrier", "reverse_barrier", "reaction_energy")
PAPER_DIFFERENCE = round(PAPER_BARRIERS["cpan"] - PAPER_BARRIERS["bare"], 2)  # +0.53 eV


def model_rank(model: str) -> int:
    """Position of a model in bulk, bare, cpan order (unknown models last)."""
    return MODEL_ORDER.index(model) if model in MODEL_ORDER else len(MODEL_ORDER)


def paper_barrier(model: str) -> float | None:
    """The paper's barrier for a model (the bulk hop is compared with the bare 2.83 eV)."""
    return PAPER_BARRIERS.get("bare" if model == "bulk" else model)


def selected_rows(rows: list[BarrierRow]) -> list[BarrierRow]:
    """The rows that count: one selected, converged path per site."""
    return [r for r in rows if r.selected and r.forward_barrier is not None]


def potential_labels(rows: list[BarrierRow]) -> list[str]:
    """Sorted potential labels (the ML potential, or the engine for DFT) of all rows."""
    return sorted({r.potential_label for r in rows})


def mean_stderr(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and its standard error (sample std / √n); None where undefined (n = 0, n < 2)."""
    if not values:
        return None, None
    data = np.asarray(values, dtype=float)
    if len(data) < 2:
        return float(data.mean()), None
    return float(data.mean()), float(data.std(ddof=1) / np.sqrt(len(data)))


@dataclass(frozen=True)
class Distribution:
    """Forward barrier over the selected sites of one potential and model (eV)."""

    potential: str
    model: str
    n: int
    mean: float
    std: float | None  # sample standard deviation (ddof=1); None for n < 2
    min: float
    max: float
    paper: float | None


def distributions(rows: list[BarrierRow]) -> list[Distribution]:
    """Per (potential, model) in potential then bulk/bare/cpan order."""
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in selected_rows(rows):
        groups[(r.potential_label, r.model)].append(r.forward_barrier)
    out = []
    for potential, model in sorted(groups, key=lambda k: (k[0], model_rank(k[1]), k[1])):
        data = np.asarray(groups[(potential, model)], dtype=float)
        out.append(Distribution(
            potential=potential, model=model, n=len(data), mean=float(data.mean()),
            std=float(data.std(ddof=1)) if len(data) > 1 else None,
            min=float(data.min()), max=float(data.max()), paper=paper_barrier(model)))
    return out


@dataclass(frozen=True)
class SitePair:
    """The selected bare and cPAN paths of one site (same slab, Ni and vacancy)."""

    engine: str
    potential: str
    site: int
    bare: BarrierRow
    cpan: BarrierRow

    def difference(self, quantity: str) -> float | None:
        """cPAN − bare of ``quantity`` (eV), None if either side lacks it."""
        a, b = getattr(self.cpan, quantity), getattr(self.bare, quantity)
        return None if a is None or b is None else a - b


def site_pairs(rows: list[BarrierRow]) -> list[SitePair]:
    """Sites selected (converged) on both the bare and the cPAN side, in (potential, engine, site) order."""
    sides: dict[tuple[str, str, int], dict[str, BarrierRow]] = defaultdict(dict)
    for r in selected_rows(rows):
        if r.model in ("bare", "cpan"):
            sides[(r.potential_label, r.engine, r.site)][r.model] = r
    return [SitePair(engine=engine, potential=potential, site=site, bare=s["bare"], cpan=s["cpan"])
            for (potential, engine, site), s in sorted(sides.items()) if len(s) == 2]


@dataclass(frozen=True)
class Difference:
    """cPAN − bare of one quantity over the paired sites of one potential (eV)."""

    quantity: str
    potential: str
    n: int
    mean: float | None
    stderr: float | None  # standard error of the mean; None for n < 2
    sites: tuple[int, ...]
    values: tuple[float, ...]


def paired_differences(rows: list[BarrierRow], quantity: str = "forward_barrier") -> list[Difference]:
    """cPAN − bare per potential, paired site by site; potentials without a pair are left out."""
    per: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for pair in site_pairs(rows):
        value = pair.difference(quantity)
        if value is not None:
            per[pair.potential].append((pair.site, value))
    out = []
    for potential in sorted(per):
        sites, values = zip(*per[potential], strict=True)
        mean, stderr = mean_stderr(list(values))
        out.append(Difference(quantity, potential, len(values), mean, stderr, sites, values))
    return out


@dataclass(frozen=True)
class PooledDifference:
    """cPAN − bare across potentials, two ways: every pair pooled, and the mean of per-potential means."""

    quantity: str
    n_pairs: int
    mean: float | None  # over all pairs of all potentials
    stderr: float | None
    n_potentials: int
    mean_of_means: float | None  # each potential weighs the same, whatever its number of sites
    stderr_of_means: float | None  # spread between potentials; None for fewer than two


def pooled_difference(rows: list[BarrierRow], quantity: str = "forward_barrier") -> PooledDifference:
    per = paired_differences(rows, quantity)
    mean, stderr = mean_stderr([v for d in per for v in d.values])
    mean_of_means, stderr_of_means = mean_stderr([d.mean for d in per])
    return PooledDifference(quantity, sum(d.n for d in per), mean, stderr, len(per), mean_of_means,
                            stderr_of_means)


_EFFECT = {
    ("ΔE_reaction", True): "destabilises the migrated state relative to the start",
    ("ΔE_reaction", False): "stabilises the migrated state relative to the start",
    ("ΔE_reverse", True): "raises the saddle above the migrated state",
    ("ΔE_reverse", False): "lowers the saddle relative to the migrated state",
}


def _pm(mean: float, stderr: float | None) -> str:
    return f"{mean:+.3f} ± {stderr:.3f} eV" if stderr is not None else f"{mean:+.3f} eV"


def _reaction_is_larger(pairs: list[SitePair]) -> bool:
    reaction = float(np.mean([p.difference("reaction_energy") for p in pairs]))
    return abs(reaction) >= abs(float(np.mean([p.difference("reverse_barrier") for p in pairs])))


def attribution(rows: list[BarrierRow]) -> str:
    """One sentence (and, with several potentials, how many agree), from the paired numbers only, on
    which part of the barrier change cPAN makes.

    Over pairs where all three quantities exist, Δforward = Δreverse + Δreaction exactly; the
    larger of the two parts says whether the coating mainly moves the migrated (end) state
    relative to the start, or the saddle relative to the migrated state. Energies are relative:
    nothing is said about which absolute state moves.
    """
    full = [p for p in site_pairs(rows) if all(p.difference(q) is not None for q in QUANTITIES)]
    if not full:
        return ("No site has a selected (converged) path on both the bare and the cPAN side, so the "
                "cPAN − bare change is not attributed.")
    stats = {q: mean_stderr([p.difference(q) for p in full]) for q in QUANTITIES}
    (fwd, fwd_se), (rev, rev_se), (rxn, rxn_se) = (stats[q] for q in QUANTITIES)
    head = (f"Pooled over {len(full)} bare/cPAN site pair{'s' if len(full) != 1 else ''}, cPAN − bare "
            f"changes the forward barrier by {_pm(fwd, fwd_se)}: ΔE_reaction (end − start) "
            f"{_pm(rxn, rxn_se)} plus ΔE_reverse (saddle − end) {_pm(rev, rev_se)}")
    parts = {"ΔE_reaction": (rxn, rxn_se), "ΔE_reverse": (rev, rev_se)}
    big, small = sorted(parts, key=lambda k: -abs(parts[k][0]))  # a tie keeps ΔE_reaction first
    (value, se), other = parts[big], parts[small][0]
    if value == 0.0:
        verdict = "neither part changes"
    elif value * other > 0 and abs(other) > 0.5 * abs(value):
        verdict = (f"the two parts are of similar size (the larger is {big}): the coating both "
                   f"{_EFFECT[big, value > 0]} and {_EFFECT[small, other > 0]}")
    else:
        verdict = f"the larger part is {big}: the coating mainly {_EFFECT[big, value > 0]}"
    caveats = []
    if len(full) < 2:
        caveats.append("one pair, so no error estimate")
    elif se is not None and abs(value) <= se:
        caveats.append(f"{big} is within one standard error of zero")
    if fwd_se is not None and abs(fwd) <= fwd_se:
        caveats.append("the forward-barrier change itself is within one standard error of zero")
    tail = f" ({'; '.join(caveats)})" if caveats else ""
    by_potential: dict[str, list[SitePair]] = defaultdict(list)
    for p in full:
        by_potential[p.potential].append(p)
    agree = ""
    if len(by_potential) > 1:
        same = sum(_reaction_is_larger(ps) == (big == "ΔE_reaction") for ps in by_potential.values())
        agree = f" Per potential, {big} is the larger part for {same} of {len(by_potential)}."
    return f"{head}; {verdict}{tail}.{agree}"

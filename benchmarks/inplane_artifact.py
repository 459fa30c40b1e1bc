"""Is SevenNet's negative in-plane reaction energy (bare slab) a relaxation artifact?

An earlier quick study gave, for the bare model's in-plane Ni hop, E(end) − E(start) ≈ −1.0 eV
with SevenNet-0 + D3 and ≈ +1.7 eV with CHGNet 0.3.0 + D3, each on its own relaxed end points.
This script relaxes the end points of the chosen sites with both potentials exactly as the
quick study's relax job does (atomate2's ``AseRelaxer``: pymatgen's selective dynamics as ASE
``FixAtoms``, ASE ``BFGS`` with default parameters, the study's fmax, at most 500 steps, fixed
cell, no stress) and prints per case:

* energies: unrelaxed and relaxed start/end per potential, reaction energies, and the cross
  energies (each potential on the other one's relaxed structures) — a different structure vs a
  different energy of the same structure;
* the D3 part of each reaction energy (D3(BJ)-PBE, identical for both potentials on one structure);
* structure diagnostics of each relaxed end point vs its unrelaxed input and vs the other
  potential's: largest displacement (which atom), atoms moved > 0.5 / 1 Å, the hopping Ni's
  distance to its target vacancy and its original site, its O count within 2.3 Å, the shortest
  O–O distance (O2 when < 1.5 Å), the lowest free-atom height vs the fixed layers, CHGNet's
  magnetic moment of the hopping Ni (a charge-state proxy), RMSD between the two relaxed ends;
* CHGNet and SevenNet energies along each potential's end-point relaxation (a few frames), to
  see where they part.

Relaxed structures (extxyz and CIF), trajectories and a JSON summary go to ``--out``; finished
relaxations are reused on a rerun (delete the folder to recompute).

    NCMFLOW_TORCH_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/inplane_artifact.py \
        [--cases in-plane:0,in-plane:1,subsurface:0] [--out inplane_artifact]

``--cases in-plane:0:reduced`` takes the quick DFT check's reduced model (2 layers, bottom one
fixed) instead of the default 4-layer slab; ``cpan/in-plane:0`` the cPAN model of the same site
(its "highest fixed atom z" then counts the held cPAN atoms above the slab).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

POTENTIALS = ("chgnet", "sevennet")
SHORT = {"chgnet": "CHG", "sevennet": "7N"}
NI_O_BOND = 2.3  # Å
O2_BOND = 1.5  # Å
PROFILE_FRAMES = 8  # frames of each relaxation evaluated by both potentials


# ----------------------------------------------------------------------------- geometry helpers
def _mic(vectors: np.ndarray, atoms) -> np.ndarray:
    from ase.geometry import find_mic

    return find_mic(vectors, atoms.cell, atoms.pbc)[1]


def _displacements(a, b) -> np.ndarray:
    """Per-atom minimum-image displacement between two Atoms with the same ordering and cell."""
    return _mic(b.positions - a.positions, a)


def _dist(atoms, p, q) -> float:
    return float(_mic(np.atleast_2d(np.asarray(q) - np.asarray(p)), atoms)[0])


def _min_pair(atoms, mask: np.ndarray) -> tuple[float, int, int]:
    idx = np.flatnonzero(mask)
    d = atoms.get_all_distances(mic=True)[np.ix_(idx, idx)]
    np.fill_diagonal(d, np.inf)
    i, j = np.unravel_index(np.argmin(d), d.shape)
    return float(d[i, j]), int(idx[i]), int(idx[j])


def diagnose(relaxed, unrelaxed, ni: int, target, origin) -> dict:
    """Structure numbers of one relaxed end point (see the module docstring)."""
    sym = np.array(relaxed.get_chemical_symbols())
    d = _displacements(unrelaxed, relaxed)
    worst = int(np.argmax(d))
    fixed = relaxed.constraints[0].index if relaxed.constraints else np.array([], dtype=int)
    free = np.setdiff1d(np.arange(len(relaxed)), fixed)
    dist_all = relaxed.get_all_distances(mic=True)
    o = np.flatnonzero(sym == "O")
    ni_o = np.sort(dist_all[ni, o])
    oo, oi, oj = _min_pair(relaxed, sym == "O")
    closest, _, _ = _min_pair(relaxed, np.ones(len(relaxed), bool))
    li = sym == "Li"
    z = relaxed.positions[:, 2]
    return {
        "max_disp": float(d[worst]), "max_disp_atom": f"{sym[worst]}{worst}",
        "n_moved_0.5": int((d > 0.5).sum()), "n_moved_1.0": int((d > 1.0).sum()),
        "moved_atoms_1.0": [f"{sym[i]}{i}:{d[i]:.2f}" for i in np.flatnonzero(d > 1.0)],
        "max_li_disp": float(d[li].max()) if li.any() else 0.0,
        "max_fixed_disp": float(d[fixed].max()) if len(fixed) else 0.0,
        "ni_to_target": _dist(relaxed, relaxed.positions[ni], target),
        "ni_to_origin": _dist(relaxed, relaxed.positions[ni], origin),
        "ni_disp": float(d[ni]),
        "ni_O_count": int((ni_o < NI_O_BOND).sum()), "ni_O_dists": [round(float(x), 3) for x in ni_o[:7]],
        "min_OO": oo, "min_OO_pair": f"O{oi}-O{oj}", "n_OO_below_1.5": int(
            ((dist_all[np.ix_(o, o)] + np.eye(len(o)) * 99) < O2_BOND).sum() // 2),
        "closest_pair": closest,
        "min_free_z": float(z[free].min()), "max_fixed_z": float(z[fixed].max()) if len(fixed) else None,
        "ni_z_shift": float(relaxed.positions[ni, 2] - unrelaxed.positions[ni, 2]),
    }


def rmsd(a, b, atoms_mask: np.ndarray | None = None) -> tuple[float, float, str]:
    d = _displacements(a, b)
    if atoms_mask is not None:
        d = np.where(atoms_mask, d, 0.0)
    worst = int(np.argmax(d))
    n = int(atoms_mask.sum()) if atoms_mask is not None else len(d)
    return float(np.sqrt((d ** 2).sum() / n)), float(d[worst]), f"{a.get_chemical_symbols()[worst]}{worst}"


# ----------------------------------------------------------------------------- calculators
class Calculators:
    """The study's calculators (``get_engine("mlip").calculator(settings, stress=False)``)."""

    def __init__(self, config) -> None:
        from ncmflow.inputs.mlip import dispersion_calculator
        from ncmflow.workflows.engines import get_engine

        engine = get_engine("mlip")
        self.settings = {p: config.settings(p) for p in POTENTIALS}
        self.calc = {p: engine.calculator(self.settings[p], stress=False) for p in POTENTIALS}
        self.d3 = dispersion_calculator(self.settings["chgnet"], "pbe")

    def energy(self, atoms, potential: str) -> float:
        a = atoms.copy()
        a.calc = self.calc[potential]
        return float(a.get_potential_energy())

    def d3_energy(self, atoms) -> float:
        a = atoms.copy()
        a.calc = self.d3
        return float(a.get_potential_energy())

    def chgnet_magmoms(self, atoms) -> np.ndarray:
        from pymatgen.io.ase import AseAtomsAdaptor

        from ncmflow.inputs.mlip import _chgnet_model

        pred = _chgnet_model("0.3.0").predict_structure(AseAtomsAdaptor.get_structure(atoms), task="em")
        return np.asarray(pred["m"], dtype=float)


# ----------------------------------------------------------------------------- relaxation
def relax(atoms0, potential: str, calcs: Calculators, fmax: float, steps: int, tag: Path) -> dict:
    """BFGS at fixed cell as atomate2's AseRelaxer runs it; cached under ``tag``.*"""
    from ase.io import read, write
    from ase.io.trajectory import Trajectory
    from ase.optimize import BFGS

    from ncmflow.workflows.neb import CountingCalculator

    meta_file = tag.with_suffix(".json")
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        final = read(tag.with_suffix(".extxyz"))
        final.set_constraint(atoms0.constraints)
        return {**meta, "atoms": final, "cached": True}
    atoms = atoms0.copy()
    atoms.calc = counter = CountingCalculator(calcs.calc[potential])
    opt = BFGS(atoms, logfile=str(tag.with_suffix(".log")))
    traj = Trajectory(str(tag.with_suffix(".traj")), "w", atoms)
    opt.attach(traj.write, interval=1)
    t0 = time.perf_counter()
    converged = bool(opt.run(fmax=fmax, steps=steps))
    wall = time.perf_counter() - t0
    traj.close()
    forces = atoms.get_forces(apply_constraint=True)
    meta = {"potential": potential, "converged": converged, "steps": int(opt.nsteps), "calls": counter.calls,
            "wall_s": wall, "energy": float(atoms.get_potential_energy()),
            "final_fmax": float(np.linalg.norm(forces, axis=1).max()), "fmax": fmax, "max_steps": steps}
    out = atoms.copy()
    out.info.update({k: v for k, v in meta.items() if not isinstance(v, bool)}, converged=int(converged))
    write(tag.with_suffix(".extxyz"), out, format="extxyz")
    write(tag.with_suffix(".cif"), out)
    meta_file.write_text(json.dumps(meta, indent=1))
    return {**meta, "atoms": atoms, "cached": False}


def profile(tag: Path, calcs: Calculators, ni: int, target, origin) -> list[dict]:
    """Both potentials' energies on a few frames of one relaxation's trajectory (cached)."""
    from ase.io import read

    cache = tag.with_name(tag.name + "_profile.json")
    if cache.is_file():
        return json.loads(cache.read_text())
    frames = read(tag.with_suffix(".traj"), index=":")
    picks = sorted({round(x) for x in np.linspace(0, len(frames) - 1, PROFILE_FRAMES)})
    rows = []
    for k in picks:
        f = frames[k]
        sym = np.array(f.get_chemical_symbols())
        oo, _, _ = _min_pair(f, sym == "O")
        rows.append({"step": k, **{p: calcs.energy(f, p) for p in POTENTIALS},
                     "ni_to_target": _dist(f, f.positions[ni], target),
                     "ni_to_origin": _dist(f, f.positions[ni], origin), "min_OO": oo})
    cache.write_text(json.dumps(rows, indent=1))
    return rows


# ----------------------------------------------------------------------------- one case
def run_case(config_for, model: str, hop: str, site: int, size: str, calcs: Calculators, args,
             out: Path) -> dict:
    from pymatgen.io.ase import AseAtomsAdaptor

    config = config_for(hop, size)
    start_s, end_s = config.endpoints(model, site)
    ni = int(end_s.properties["moved_index"])
    adaptor = AseAtomsAdaptor()
    start0, end0 = adaptor.get_atoms(start_s), adaptor.get_atoms(end_s)
    origin, target = start0.positions[ni].copy(), end0.positions[ni].copy()
    name = f"{model}_{hop}_site{site}" + ("_reduced" if size == "reduced" else "")
    print(f"\n=== {name}: {end_s.properties['site_label']}  ({len(start0)} atoms, "
          f"{len(start0.constraints[0].index) if start0.constraints else 0} fixed, hopping Ni {ni}, "
          f"hop {end_s.properties['hop_distance']:.3f} Å)", flush=True)
    res: dict = {"case": name, "site_label": end_s.properties["site_label"], "ni": ni, "relax": {}}
    relaxed = {}
    for pot in POTENTIALS:
        for which, a0 in (("start", start0), ("end", end0)):
            tag = out / f"{name}_{which}_{pot}"
            r = relax(a0, pot, calcs, config.relax_fmax, args.steps, tag)
            relaxed[pot, which] = r.pop("atoms")
            res["relax"][f"{pot}/{which}"] = r
            print(f"  relaxed {which:5} {pot:8}: E {r['energy']:.4f} eV, converged {r['converged']}, "
                  f"{r['steps']} steps, final fmax {r['final_fmax']:.3f}, "
                  f"{r['wall_s']:.0f} s{' (cached)' if r['cached'] else ''}", flush=True)
    # energies: every potential on every structure (unrelaxed, relaxed by either potential)
    structs = {"unrelaxed": (start0, end0), **{f"{p}-relaxed": (relaxed[p, "start"], relaxed[p, "end"])
                                               for p in POTENTIALS}}
    E = {}
    for label, (s, e) in structs.items():
        for pot in POTENTIALS:
            E[label, pot] = (calcs.energy(s, pot), calcs.energy(e, pot))
        E[label, "d3"] = (calcs.d3_energy(s), calcs.d3_energy(e))
    res["energies"] = {f"{k[0]}|{k[1]}": v for k, v in E.items()}
    # diagnostics
    diag = {}
    for pot in POTENTIALS:
        for which, a0 in (("start", start0), ("end", end0)):
            dg = diagnose(relaxed[pot, which], a0, ni, target, origin)
            m = calcs.chgnet_magmoms(relaxed[pot, which])
            dg["chgnet_magmom_ni"] = float(m[ni])
            dg["chgnet_magmom_total_abs"] = float(np.abs(m).sum())
            diag[pot, which] = dg
    for which, a0 in (("start", start0), ("end", end0)):
        dg = diagnose(a0, a0, ni, target, origin)
        m = calcs.chgnet_magmoms(a0)
        dg["chgnet_magmom_ni"], dg["chgnet_magmom_total_abs"] = float(m[ni]), float(np.abs(m).sum())
        diag["unrelaxed", which] = dg
    res["diagnostics"] = {f"{k[0]}/{k[1]}": v for k, v in diag.items()}
    free = np.ones(len(start0), bool)
    if start0.constraints:
        free[start0.constraints[0].index] = False
    res["rmsd"] = {which: rmsd(relaxed["chgnet", which], relaxed["sevennet", which], free)
                   for which in ("start", "end")}
    res["profiles"] = {}
    if not args.no_profile:
        for pot in POTENTIALS:
            for which in ("start", "end"):
                res["profiles"][f"{pot}/{which}"] = profile(out / f"{name}_{which}_{pot}", calcs, ni, target,
                                                            origin)
    report(res, E, diag)
    return res


def report(res: dict, E: dict, diag: dict) -> None:
    print("\n  Energies (eV); rows = structures, columns = potential evaluating them")
    print(f"  {'structures':20} {'eval':9} {'E(start)':>12} {'E(end)':>12} {'ΔE=end−start':>13}")
    for label in ("unrelaxed", *(f"{p}-relaxed" for p in POTENTIALS)):
        for pot in (*POTENTIALS, "d3"):
            s, e = E[label, pot]
            who = "D3 only" if pot == "d3" else pot
            print(f"  {label:20} {who:9} {s:12.4f} {e:12.4f} {e - s:13.4f}")
    print("\n  Relaxation energies (own potential): E(relaxed) − E(unrelaxed)")
    for pot in POTENTIALS:
        for i, which in enumerate(("start", "end")):
            print(f"    {pot:8} {which:5}: {E[f'{pot}-relaxed', pot][i] - E['unrelaxed', pot][i]:9.4f} eV")
    print("\n  Cross check on the END point: energy of A-relaxed end minus B-relaxed end, by each potential")
    for pot in POTENTIALS:
        d = E["sevennet-relaxed", pot][1] - E["chgnet-relaxed", pot][1]
        ds = E["sevennet-relaxed", pot][0] - E["chgnet-relaxed", pot][0]
        print(f"    {pot:8}: E(7N-relaxed end) − E(CHG-relaxed end) = {d:8.4f} eV;  "
              f"same for start: {ds:8.4f} eV")
    keys = [("max_disp", "max |Δr| vs input (Å)", "{:.3f}"), ("max_disp_atom", "  … atom", "{}"),
            ("n_moved_0.5", "atoms moved > 0.5 Å", "{}"), ("n_moved_1.0", "atoms moved > 1.0 Å", "{}"),
            ("max_li_disp", "max Li |Δr| (Å)", "{:.3f}"), ("max_fixed_disp", "max fixed-atom |Δr|", "{:.3f}"),
            ("ni_disp", "hopping Ni |Δr| (Å)", "{:.3f}"), ("ni_z_shift", "hopping Ni Δz (Å)", "{:+.3f}"),
            ("ni_to_target", "Ni → target site (Å)", "{:.3f}"),
            ("ni_to_origin", "Ni → original site (Å)", "{:.3f}"),
            ("ni_O_count", f"Ni O count (< {NI_O_BOND} Å)", "{}"),
            ("min_OO", "shortest O–O (Å)", "{:.3f}"), ("min_OO_pair", "  … pair", "{}"),
            ("n_OO_below_1.5", "O–O pairs < 1.5 Å", "{}"), ("closest_pair", "closest pair (Å)", "{:.3f}"),
            ("min_free_z", "lowest free atom z (Å)", "{:.2f}"),
            ("max_fixed_z", "highest fixed atom z", "{:.2f}"),
            ("chgnet_magmom_ni", "CHGNet μ(Ni_hop) (μB)", "{:.2f}"),
            ("chgnet_magmom_total_abs", "CHGNet Σ|μ| (μB)", "{:.1f}")]
    cols = [(w, p) for w in ("start", "end") for p in ("unrelaxed", *POTENTIALS)]
    print(f"\n  Structure diagnostics (hopping Ni = atom {res['ni']})")
    print(f"  {'':26}" + "".join(f"{w[:3] + ' ' + ({'unrelaxed': 'input'}.get(p, SHORT.get(p))):>12}"
                                 for w, p in cols))
    for key, text, fmt in keys:
        print(f"  {text:26}" + "".join(f"{fmt.format(diag[p, w][key]):>12}" for w, p in cols))
    for w in ("start", "end"):
        for p in POTENTIALS:
            moved = diag[p, w]["moved_atoms_1.0"]
            if moved:
                print(f"    {w} {p}: atoms moved > 1 Å: {', '.join(moved)}")
            print(f"    {w} {p}: hopping-Ni–O distances {diag[p, w]['ni_O_dists']}")
    for w, (r, mx, atom) in res["rmsd"].items():
        print(f"  RMSD CHGNet- vs SevenNet-relaxed {w} (free atoms): {r:.3f} Å, largest {mx:.3f} Å ({atom})")
    for key, rows in res["profiles"].items():
        print(f"  along the {key} relaxation: step: E_CHG−E_CHG(0), E_7N−E_7N(0) eV, "
              "Ni→target, Ni→origin, O–O")
        for row in rows:
            print(f"    {row['step']:4d}: {row['chgnet'] - rows[0]['chgnet']:+8.3f} "
                  f"{row['sevennet'] - rows[0]['sevennet']:+8.3f}   {row['ni_to_target']:.2f} "
                  f"{row['ni_to_origin']:.2f}  {row['min_OO']:.2f}")


def summary_table(results: list[dict]) -> None:
    print("\n=== Summary: ΔE = E(end) − E(start), eV (row: structures; columns: evaluating potential)")
    print(f"{'case':26} {'structures':18} {'CHGNet+D3':>10} {'7Net+D3':>10}   conv(s/e) steps(s/e)")
    for res in results:
        en = res["energies"]
        for label in ("unrelaxed", "chgnet-relaxed", "sevennet-relaxed"):
            row = [en[f"{label}|{p}"][1] - en[f"{label}|{p}"][0] for p in POTENTIALS]
            extra = ""
            if label != "unrelaxed":
                p = label.split("-")[0]
                rs, re_ = res["relax"][f"{p}/start"], res["relax"][f"{p}/end"]
                extra = (f"   {rs['converged']!s:>5}/{re_['converged']!s:<5} "
                         f"{rs['steps']:>4}/{re_['steps']:<4}")
            print(f"{res['case']:26} {label:18} {row[0]:10.3f} {row[1]:10.3f}{extra}")


def main() -> None:
    from ncmflow.workflows.study import StudyConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="in-plane:0,in-plane:1,subsurface:0",
                        help="[model/]hop:site[:reduced],… (model bare unless given, e.g. cpan/in-plane:0; "
                             "default sizes; 'reduced': the quick DFT check's 2-layer model)")
    parser.add_argument("--steps", type=int, default=500, help="BFGS step budget per relaxation")
    parser.add_argument("--out", default="inplane_artifact")
    parser.add_argument("--no-profile", action="store_true",
                        help="skip the energy profiles along relaxations")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    configs = {}

    def config_for(hop: str, size: str = "default"):
        # "reduced": the quick DFT check's models (2 layers, 2-unit cPAN sites: QUICK_DFT)
        if (hop, size) not in configs:
            configs[hop, size] = StudyConfig.create(quick=True, hop=hop, dft_check=size == "reduced" or None)
        return configs[hop, size]

    calcs = Calculators(config_for("in-plane"))
    print(f"quick study settings: relax fmax {config_for('in-plane').relax_fmax} eV/Å, BFGS, "
          f"≤ {args.steps} steps, fixed cell; potentials: "
          + ", ".join(f"{p} (+D3 {calcs.settings[p].dispersion})" for p in POTENTIALS))
    results = []
    for case in args.cases.split(","):
        model, _, spec = case.rpartition("/")
        hop, site, *size = spec.split(":")
        results.append(run_case(config_for, model or "bare", hop, int(site), (size or ["default"])[0], calcs,
                                args, out))
        (out / "summary.json").write_text(json.dumps(results, indent=1, default=str))
    summary_table(results)
    print(f"\ntotal wall time {time.perf_counter() - t0:.0f} s; outputs in {out}")


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    main()

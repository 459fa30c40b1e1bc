"""COHP: LOBSTER readers (synthetic files, then real NaCl data) and the LCAO COHP/COOP."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import write
from scipy.integrate import trapezoid

from ncmflow.analysis.cohp import CohpResult, lcao_cohp, plot_cohp, read_lobster_cohp

TESTDATA = Path(__file__).resolve().parents[1].parent / "shared" / "testdata"
NACL = TESTDATA / "vasp_lobster_nacl"
needs_nacl = pytest.mark.skipif(
    not (NACL / "COHPCAR.lobster.gz").is_file(),
    reason=f"shared VASP/LOBSTER test data not found at {NACL} (a plain clone has no ../shared)",
)


# ---------------------------------------------------------------- synthetic LOBSTER files
E_GRID = np.linspace(-2.0, 2.0, 5)
NI_N = {"up": np.array([-0.1, -0.4, -0.2, 0.1, 0.0]), "down": np.array([-0.1, -0.2, 0.0, 0.3, 0.0])}
NI_NI = np.array([0.0, 0.05, 0.1, 0.0, 0.0])
ICOHP = {"up": (-0.75, 0.02), "down": (-0.5, 0.01)}


def write_lobster_folder(folder: Path, spins: tuple[str, ...]) -> None:
    """Ni–N and Ni–Ni bonds in the LOBSTER 4 layout (columns: E, then per spin the average and
    each bond as COHP, ICOHP pairs); ICOHPLIST is gzipped to exercise that path too."""
    atoms = Atoms("Ni2N", positions=[[0, 0, 0], [2.5, 0, 0], [0, 0, 1.9]], cell=[8, 8, 8])
    write(folder / "CONTCAR", atoms, format="vasp")
    rows = []
    for i, x in enumerate(E_GRID):
        cols = [x]
        for spin in spins:
            a, b = NI_N[spin][i], NI_NI[i]
            cols += [(a + b) / 2, 0.0, a, 0.0, b, 0.0]
        rows.append(" ".join(f"{v:.5f}" for v in cols))
    (folder / "COHPCAR.lobster").write_text("\n".join([
        "COHPCAR.lobster synthetic", f"  3  {len(spins)}  5  -2.0  2.0  -1.5", "Average",
        "No.1:Ni1->N3(1.9)", "No.2:Ni1->Ni2(2.5)", *rows, ""]))
    with gzip.open(folder / "ICOHPLIST.lobster.gz", "wt") as fh:
        for n, spin in enumerate(spins, start=1):
            fh.write(f"  COHP#  atomMU  atomNU  distance  translation  ICOHP (at) eF  for spin  {n}\n"
                     f"  1  Ni1  N3  1.90000  0  0  0  {ICOHP[spin][0]:.5f}\n"
                     f"  2  Ni1  Ni2  2.50000  0  0  0  {ICOHP[spin][1]:.5f}\n")


@pytest.mark.parametrize("spins", [("up",), ("up", "down")])
def test_synthetic_lobster(tmp_path, spins):
    write_lobster_folder(tmp_path, spins)
    res = read_lobster_cohp(tmp_path, pair=("N", "Ni"))
    np.testing.assert_allclose(res.energies, E_GRID)
    np.testing.assert_allclose(res.lengths, [1.9])
    assert res.labels == ["1"] and res.atoms == [("Ni1", "N3")]
    assert tuple(res.minus_cohp) == spins  # non-spin-polarized: "up" only
    for spin in spins:
        np.testing.assert_allclose(res.minus_cohp[spin][0], -NI_N[spin])
        assert res.minus_icohp_at_ef[spin][0] == pytest.approx(-ICOHP[spin][0])
    assert read_lobster_cohp(tmp_path, labels=["2"]).atoms == [("Ni1", "Ni2")]
    with pytest.raises(ValueError, match="no bonds"):
        read_lobster_cohp(tmp_path, pair=("Ni", "N"), max_length=1.5)
    assert res.as_dict()["minus_icohp_at_ef"]["up"] == [pytest.approx(0.75)]
    assert res.as_dict()["atoms"] == [["Ni1", "N3"]]


def test_synthetic_cohp_integrates_to_hand_trapezoid(tmp_path):
    """−COHP(Ni–N, up) = 0.1, 0.4, 0.2, −0.1, 0 at E = −2…2 eV: trapezoid to E_F by hand is
    (0.1 + 0.4)/2 + (0.4 + 0.2)/2 = 0.55 eV; down 0.1, 0.2, 0 → 0.15 + 0.1 = 0.25 eV."""
    write_lobster_folder(tmp_path, ("up", "down"))
    res = read_lobster_cohp(tmp_path, pair=("Ni", "N"))
    occupied = res.energies <= 0
    integral = {s: trapezoid(res.minus_cohp[s][0, occupied], res.energies[occupied]) for s in ("up", "down")}
    assert integral == {"up": pytest.approx(0.55, abs=1e-12), "down": pytest.approx(0.25, abs=1e-12)}


def test_missing_lobster_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="CONTCAR"):
        read_lobster_cohp(tmp_path, pair=("Ni", "N"))


# ---------------------------------------------------------------- real NaCl LOBSTER data
def raw_icohps(path: Path, atoms: set[str], max_length: float) -> list[list[float]]:
    """ICOHP per spin block for atom-resolved lines, parsed straight from the text."""
    blocks: list[list[float]] = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            parts = line.split()
            if parts[0] == "COHP#":
                blocks.append([])
            elif {parts[1], parts[2]} == atoms and float(parts[3]) < max_length:
                blocks[-1].append(float(parts[-1]))
    return blocks


@pytest.fixture(scope="module")
def nacl() -> CohpResult:
    return read_lobster_cohp(NACL, pair=("Na", "Cl"), max_length=3.0)


# −ICOHP(E_F) of the six Na1–Cl2 bonds (labels 21, 23, 24, 27, 28, 30), as printed in the
# shared ICOHPLIST.lobster.gz files (eV, 5 decimals; spin 1 then spin 2)
NACL_ICOHPLIST = {
    "": {"up": [0.28309, 0.28309, 0.28307, 0.28308, 0.28307, 0.28307],
         "down": [0.28308, 0.28308, 0.28307, 0.28308, 0.28307, 0.28307]},
    "spin": {"up": [0.28270, 0.28270, 0.28269, 0.28270, 0.28269, 0.28269],
             "down": [0.28270, 0.28270, 0.28269, 0.28270, 0.28269, 0.28269]},
}


@needs_nacl
@pytest.mark.parametrize("folder", ["", "spin"])
def test_nacl_icohp_matches_printed_icohplist(folder, nacl):
    res = nacl if folder == "" else read_lobster_cohp(NACL / folder, ("Cl", "Na"), 3.0)
    assert res.labels == ["21", "23", "24", "27", "28", "30"]
    for spin, printed in NACL_ICOHPLIST[folder].items():
        np.testing.assert_allclose(res.minus_icohp_at_ef[spin], printed, atol=5e-7)


@needs_nacl
@pytest.mark.parametrize("folder", ["", "spin"])
def test_nacl_icohp_equals_icohplist(folder, nacl):
    res = nacl if folder == "" else read_lobster_cohp(NACL / folder, ("Cl", "Na"), 3.0)
    raw = raw_icohps(NACL / folder / "ICOHPLIST.lobster.gz", {"Na1", "Cl2"}, 3.0)
    assert len(res.labels) == 6  # rock salt: six nearest Cl around Na
    np.testing.assert_allclose(res.lengths, 2.84585, atol=1e-4)
    assert sorted(res.minus_icohp_at_ef) == ["down", "up"]  # both files are spin-polarized
    np.testing.assert_allclose(res.minus_icohp_at_ef["up"], [-x for x in raw[0]])
    np.testing.assert_allclose(res.minus_icohp_at_ef["down"], [-x for x in raw[1]])
    assert np.all(res.minus_icohp_at_ef["up"] > 0.2)  # Na–Cl is net bonding
    up, down = res.minus_cohp["up"], res.minus_cohp["down"]
    assert up.shape == down.shape == (6, len(res.energies))
    if folder == "spin":  # its COHPCAR starts at -15.9 eV, above Na 2p: the integral falls short
        return
    occupied = res.energies <= 0  # integrating the right COHPCAR column gives ICOHPLIST back
    for spin in ("up", "down"):
        integral = trapezoid(res.minus_cohp[spin][:, occupied], res.energies[occupied])
        # measured: within 1.6e-5 eV (ICOHPLIST rounds to 1e-5; 0.004 eV trapezoid steps)
        np.testing.assert_allclose(integral, res.minus_icohp_at_ef[spin], atol=3e-5)


@needs_nacl
def test_nacl_plot(nacl, tmp_path):
    spin = read_lobster_cohp(NACL / "spin", ("Na", "Cl"), 3.0)
    out = plot_cohp({"Na–Cl": nacl, "Na–Cl (spin/)": spin}, tmp_path / "cohp.png")
    assert out.stat().st_size > 10_000


# ---------------------------------------------------------------- LCAO COHP on an H2 model
def h2_model(eps=-5.0, t=-2.0, s=0.2):
    """Two 1s orbitals; occupied bonding state, empty antibonding; one k-point, spin-paired."""
    H = np.array([[[eps, t], [t, eps]]])
    S = np.array([[[1.0, s], [s, 1.0]]])
    e_b, e_a = (eps + t) / (1 + s), (eps - t) / (1 - s)
    c_b, c_a = 1 / np.sqrt(2 * (1 + s)), 1 / np.sqrt(2 * (1 - s))
    coeffs = np.array([[[c_b, c_b], [c_a, -c_a]]])  # (k, band, orbital)
    return H, S, coeffs, np.array([[e_b, e_a]]), (e_b + e_a) / 2


def test_lcao_cohp_h2_bonding():
    H, S, c, eig, ef = h2_model()
    grid = np.linspace(-15, 5, 2001)
    res = lcao_cohp(H, S, c, eig, [2.0], [0], [1], ef, grid, width=0.1)
    assert res["icoop"] > 0  # bonding state occupied -> positive overlap population
    assert -res["icohp"] > 0  # -ICOHP positive for a bond
    assert res["icoop"] == pytest.approx(0.2 / 1.2)  # 2 e × c_b² s
    bonding = np.argmin(np.abs(grid - eig[0, 0]))
    assert res["minus_cohp"][bonding] > 0 and res["coop"][bonding] > 0
    antibonding = np.argmin(np.abs(grid - eig[0, 1]))
    assert res["minus_cohp"][antibonding] < 0  # empty antibonding peak shows left
    # broadened curve integrates to the sharp value
    dE = grid[1] - grid[0]
    assert res["cohp"][grid <= ef].sum() * dE == pytest.approx(res["icohp"], rel=1e-3)


def test_lcao_mulliken_sum_is_electron_count():
    H, S, c, eig, ef = h2_model()
    grid = np.linspace(-15, 5, 11)
    total = sum(lcao_cohp(H, S, c, eig, [2.0], [i], [j], ef, grid)["icoop"]
                for i in (0, 1) for j in (0, 1))
    assert total == pytest.approx(2.0)

"""PDOS reader, d-band centre and overlap: synthetic Gaussians first, then real NaCl VASP data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import trapezoid

from ncmflow.analysis.pdos import PdosData, band_centre, pdos_overlap, plot_pdos

TESTDATA = Path(__file__).resolve().parents[1].parent / "shared" / "testdata"
NACL = TESTDATA / "vasp_lobster_nacl"
needs_nacl = pytest.mark.skipif(
    not (NACL / "vasprun.xml.gz").is_file(),
    reason=f"shared VASP/LOBSTER test data not found at {NACL} (a plain clone has no ../shared)",
)

EF = 3.0  # absolute Fermi level of the synthetic data, eV


def gaussian(e: np.ndarray, centre: float, width: float = 0.3, area: float = 1.0) -> np.ndarray:
    return area * np.exp(-0.5 * ((e - centre) / width) ** 2) / (width * np.sqrt(2 * np.pi))


@pytest.fixture
def synthetic() -> PdosData:
    e = np.linspace(EF - 10, EF + 5, 3001)  # absolute energies as a GPAW engine would give
    return PdosData.from_arrays(
        e,
        {
            "Ni-d": {0: gaussian(e, EF - 1.5, area=4.0), 1: gaussian(e, EF - 1.5, area=3.0)},
            "N-p": {"up": gaussian(e, EF - 1.5, area=0.5), "down": gaussian(e, EF - 1.5)},
            "O-p": {"up": gaussian(e, EF - 6.0), "down": gaussian(e, EF - 6.0)},
        },
        efermi=EF,
    )


def test_from_arrays_is_relative_to_fermi_level_and_keeps_spins(synthetic):
    assert synthetic.energies[0] == pytest.approx(-10.0)
    assert set(synthetic.projections["Ni-d"]) == {"up", "down"}
    up, down = (trapezoid(g, synthetic.energies) for g in synthetic.projections["Ni-d"].values())
    assert (up, down) == (pytest.approx(4.0, rel=1e-6), pytest.approx(3.0, rel=1e-6))


def test_d_band_centre_of_gaussian(synthetic):
    assert band_centre(synthetic, "Ni-d") == pytest.approx(-1.5, abs=0.01)
    assert band_centre(synthetic, "Ni-d", window=(-np.inf, -1.5)) < -1.5  # occupied-side tail


def test_overlap_is_one_for_same_shape_and_zero_for_disjoint(synthetic):
    # same shape, different heights and spin balance -> complete overlap
    assert pdos_overlap(synthetic, "Ni-d", "N-p") == pytest.approx(1.0, abs=1e-9)
    assert pdos_overlap(synthetic, "Ni-d", "O-p") == 0.0  # O-p lies outside E_F-2..E_F+1
    assert pdos_overlap(synthetic, "Ni-d", "O-p", window=(-10, 1)) < 1e-6
    e = synthetic.energies + EF
    half = PdosData.from_arrays(e, {"a": {0: gaussian(e, EF - 1.0)},
                                    "b": {0: gaussian(e, EF - 1.0 + 0.6)}}, EF)
    assert 0.0 < pdos_overlap(half, "a", "b", window=(-10, 5)) < 1.0


def test_bad_label_is_rejected():
    with pytest.raises(ValueError, match="not like"):
        PdosData.from_complete_dos(type("Dos", (), {"structure": []})(), ["Ni_d"])


@pytest.fixture(scope="module")
def nacl_dos():
    from pymatgen.io.vasp import Vasprun

    return Vasprun(str(NACL / "vasprun.xml.gz"), parse_potcar_file=False).complete_dos


@needs_nacl
def test_nacl_element_pdos_sum_to_projected_dos(nacl_dos):
    pdos = PdosData.from_complete_dos(nacl_dos)
    assert sorted(pdos.projections) == ["Cl-d", "Cl-p", "Cl-s", "Na-d", "Na-p", "Na-s"]
    occ = pdos.energies <= 0
    e = pdos.energies[occ]
    for spin in ("up", "down"):
        elements = sum(p[spin] for p in pdos.projections.values())
        sites = sum(np.asarray(g) for orbitals in nacl_dos.pdos.values()
                    for channels in orbitals.values() for s, g in channels.items()
                    if s.name == spin)
        assert trapezoid(elements[occ], e) == pytest.approx(trapezoid(sites[occ], e), rel=1e-6)
        # projection spheres miss interstitial charge, so projected < total, but not by much
        ratio = trapezoid(elements[occ], e) / trapezoid(pdos.total[spin][occ], e)
        assert 0.7 < ratio < 1.0
    # spin channels are read separately (they differ in the 4th digit in this file)
    assert not np.array_equal(pdos.projections["Na-p"]["up"], pdos.projections["Na-p"]["down"])
    # NaCl valence band is Cl-p: its centre lies below E_F, within the band
    assert -2.0 < band_centre(pdos, "Cl-p", window=(-5, 0)) < 0.0


@needs_nacl
def test_nacl_site_projection_and_plot(nacl_dos, tmp_path):
    pdos = PdosData.from_complete_dos(nacl_dos, ["Na0-s", "Cl1-p", "Cl-p"])
    np.testing.assert_allclose(pdos.projections["Cl1-p"]["up"], pdos.projections["Cl-p"]["up"])
    with pytest.raises(ValueError, match="not Na"):
        PdosData.from_complete_dos(nacl_dos, ["Na1-s"])
    out = plot_pdos(pdos, tmp_path / "pdos.png", ["Na0-s", "Cl-p"], show_total=True)
    assert out.stat().st_size > 10_000
    assert len(pdos.as_dict()["energies"]) == len(pdos.energies)

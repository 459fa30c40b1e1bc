"""VASP files written from the paper's settings, parsed back with pymatgen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _inputs_fixtures import bulk, coated_slab, delithiated, molecules_in_box, ni_hop, slab
from pymatgen.io.lobster import Lobsterin
from pymatgen.io.vasp import Incar, Kpoints, Poscar

from ncmflow.inputs.settings import PAPER, kpoint_mesh
from ncmflow.inputs.vasp import input_set_generator, lobster_nbands
from ncmflow.workflows.engines import write_inputs

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _write(tmp_path: Path, job: str, structures, **kw) -> tuple[Incar, list[Path]]:
    paths = write_inputs("vasp", job, structures, tmp_path, **kw)
    return Incar.from_file(tmp_path / "INCAR"), paths


def test_bulk_relax_has_the_paper_tags(tmp_path: Path) -> None:
    s = bulk()
    incar, paths = _write(tmp_path, "relax", [s])
    assert {p.name for p in paths} == {"INCAR", "KPOINTS", "POSCAR", "POTCAR.spec"}
    assert incar["ENCUT"] == 520
    assert incar["GGA"].upper() == "PE"
    assert incar["IVDW"] == 12
    assert incar["ISPIN"] == 2
    assert incar["EDIFF"] == pytest.approx(1e-5 * len(s))
    assert incar["EDIFFG"] == -0.02
    assert (incar["ISIF"], incar["IBRION"]) == (3, 1)
    assert incar["LASPH"] is True
    assert "LDIPOL" not in incar and "LDAU" not in incar
    expected = [1.0 if site.specie.symbol == "Ni" else 0.0 for site in s]
    assert incar["MAGMOM"] == expected and len(incar["MAGMOM"]) == len(s)
    kpoints = Kpoints.from_file(tmp_path / "KPOINTS")
    assert kpoints.style == Kpoints.supported_modes.Gamma
    assert tuple(kpoints.kpts[0]) == kpoint_mesh(s, PAPER.kpoint_spacing)
    poscar = Poscar.from_file(tmp_path / "POSCAR")
    assert [x.specie for x in poscar.structure] == [x.specie for x in s]
    np.testing.assert_allclose(poscar.structure.frac_coords, s.frac_coords, atol=1e-6)
    assert (tmp_path / "POTCAR.spec").read_text().split() == ["Li_sv", "Ni_pv", "O"]


def test_slab_relaxes_ions_only_with_dipole_correction(tmp_path: Path) -> None:
    s = slab()
    incar, _ = _write(tmp_path, "relax", [s])
    assert incar["ISIF"] == 2
    assert incar["LDIPOL"] is True and incar["IDIPOL"] == 3
    poscar = Poscar.from_file(tmp_path / "POSCAR")
    assert np.array(poscar.selective_dynamics).tolist() == s.site_properties["selective_dynamics"]
    with pytest.raises(ValueError, match="slab given a bulk job"):
        write_inputs("vasp", "relax", [s], tmp_path / "bulk", bulk=True)
    assert not (tmp_path / "bulk").exists()


@pytest.mark.parametrize(("dispersion", "ivdw"), [("d3bj", 12), ("d3zero", 11), ("none", None)])
def test_dispersion_switch(tmp_path: Path, dispersion: str, ivdw: int | None) -> None:
    incar, _ = _write(tmp_path, "static", [bulk()], settings=PAPER.with_changes(dispersion=dispersion))
    assert incar.get("IVDW") == ivdw


def test_hubbard_u_is_opt_in(tmp_path: Path) -> None:
    incar, _ = _write(tmp_path, "relax", [bulk()], settings=PAPER.with_changes(hubbard_u=True))
    assert incar["LDAU"] is True and incar["LDAUTYPE"] == 2
    assert incar["LDAUU"] == [0, 6.2, 0]  # Li Ni O, POSCAR order
    assert incar["LDAUL"] == [0, 2, 0]


def test_static_writes_pdos_and_densities(tmp_path: Path) -> None:
    incar, _ = _write(tmp_path, "static", [bulk()])
    assert incar["NSW"] == 0
    assert incar["LORBIT"] == 11
    assert incar["LCHARG"] is True and incar["LAECHG"] is True
    assert "IBRION" not in incar and "EDIFFG" not in incar


def test_lobster_static_and_lobsterin(tmp_path: Path) -> None:
    s = coated_slab()
    incar, paths = _write(tmp_path, "lobster", [s])
    assert tmp_path / "lobsterin" in paths
    assert incar["ISYM"] in (0, -1)
    assert incar["LWAVE"] is True and incar["NSW"] == 0
    # basis functions per element: Li 1s2s2p=5, Ni 3d3p4s=9, O/N/C 2s2p=4, H 1s=1
    counts = {"Li": 5, "Ni": 9, "O": 4, "N": 4, "C": 4, "H": 1}
    assert incar["NBANDS"] == lobster_nbands(s) == sum(counts[x.specie.symbol] for x in s)
    lobsterin = Lobsterin.from_file(tmp_path / "lobsterin")
    assert lobsterin["cohpGenerator"] == "from 1.5 to 2.3 type Ni type N"
    assert lobsterin["basisSet"] == "pbeVaspFit2015"
    assert sorted(b.split()[0] for b in lobsterin["basisfunctions"]) == sorted(s.symbol_set)
    ni = next(
        i
        for i, x in enumerate(s)
        if x.specie.symbol == "Ni" and any(n.specie.symbol == "N" for n in s.get_neighbors(x, 2.3))
    )
    pairs = [tuple(int(w) for w in line.split()[1::2]) for line in lobsterin["cohpbetween"]]
    assert pairs and all(i == ni + 1 and s[j - 1].specie.symbol == "O" for i, j in pairs)
    assert all(1.5 <= s.get_distance(i - 1, j - 1) <= 2.3 for i, j in pairs)


def test_bare_slab_lobsterin_takes_ni_o(tmp_path: Path) -> None:
    write_inputs("vasp", "lobster", [slab()], tmp_path)
    lobsterin = Lobsterin.from_file(tmp_path / "lobsterin")
    assert lobsterin["cohpGenerator"] == "from 1.5 to 2.3 type Ni type O"


def test_molecules_cover_c_n_h(tmp_path: Path) -> None:
    s = molecules_in_box()
    incar, _ = _write(tmp_path, "relax", [s])
    assert (tmp_path / "POTCAR.spec").read_text().split() == ["N", "C", "H"]
    assert incar["MAGMOM"] == [0.0] * len(s)
    assert incar["ISIF"] == 2  # a boxed molecule keeps its box


def test_neb_folders(tmp_path: Path) -> None:
    start = delithiated()
    end, ni = ni_hop(start)
    incar, _ = _write(tmp_path, "neb", [start, end], n_images=3)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["00", "01", "02", "03", "04"]
    assert not (tmp_path / "POSCAR").exists()
    assert (incar["IMAGES"], incar["SPRING"], incar["LCLIMB"]) == (3, -5, True)
    assert (incar["IBRION"], incar["POTIM"], incar["IOPT"], incar["ISIF"]) == (3, 0, 1, 2)
    assert incar["EDIFF"] == pytest.approx(1e-5 * len(start))
    assert len(incar["MAGMOM"]) == len(start)
    images = [Poscar.from_file(tmp_path / f"{i:02d}" / "POSCAR").structure for i in range(5)]
    assert all([x.specie for x in im] == [x.specie for x in start] for im in images)
    np.testing.assert_allclose(images[0].cart_coords, start.cart_coords, atol=1e-6)
    np.testing.assert_allclose(images[4].cart_coords, end.cart_coords, atol=1e-6)
    z = [im.cart_coords[ni, 2] for im in images]
    assert z[0] < z[2] < z[4]
    assert z[2] == pytest.approx((z[0] + z[4]) / 2, abs=0.1)


def test_generator_is_reusable_by_atomate2_makers() -> None:
    generator = input_set_generator("relax")
    incar = generator.get_input_set(bulk(), potcar_spec=True)["INCAR"]
    assert incar["ENCUT"] == 520 and incar["ISIF"] == 3
    incar = generator.get_input_set(slab(), potcar_spec=True)["INCAR"]
    assert incar["ISIF"] == 2 and incar["EDIFF"] == pytest.approx(1e-5 * len(slab()))

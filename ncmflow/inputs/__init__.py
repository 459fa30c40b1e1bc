"""The paper's DFT settings, written exactly, for every engine (VASP, CASTEP, ML potential).

Light on import: the engine modules (atomate2, ASE's CASTEP I/O, torch via the ML engine)
load only when used, e.g. ``from ncmflow.inputs.vasp import write_vasp``.
"""

from ncmflow.inputs.settings import PAPER, DftSettings, has_vacuum

__all__ = ["PAPER", "DftSettings", "has_vacuum"]

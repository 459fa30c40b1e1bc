"""Analyses of finished results: NEB barriers, PDOS, COHP and charge density differences.

Each module returns plain data (dataclasses / dicts of numpy arrays) and has a matching
``plot_*`` function writing a PNG. Submodules are imported explicitly (e.g.
``from ncmflow.analysis.neb import profile_from_vasp_neb``) so that importing the package
does not pull in pymatgen or matplotlib.
"""

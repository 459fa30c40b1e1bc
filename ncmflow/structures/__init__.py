"""Structure builders: pure, deterministic functions returning pymatgen objects."""

from ncmflow.structures.bulk import li05nio2, linio2, ncm811
from ncmflow.structures.cpan import cpan
from ncmflow.structures.interface import electronic_model, interface
from ncmflow.structures.migration import HOP_KINDS, MODELS, hop_sites, ni_hop_endpoints
from ncmflow.structures.slab import slab

__all__ = [
    "HOP_KINDS",
    "MODELS",
    "cpan",
    "electronic_model",
    "hop_sites",
    "interface",
    "li05nio2",
    "linio2",
    "ncm811",
    "ni_hop_endpoints",
    "slab",
]

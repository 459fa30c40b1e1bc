"""Structure builders: pure, deterministic functions returning pymatgen objects."""

from ncmflow.structures.bulk import li05nio2, linio2, ncm811
from ncmflow.structures.cpan import cpan
from ncmflow.structures.interface import electronic_model, interface
from ncmflow.structures.migration import MODELS, ni_hop_endpoints
from ncmflow.structures.slab import slab

__all__ = [
    "MODELS", "cpan", "electronic_model", "interface", "li05nio2", "linio2", "ncm811", "ni_hop_endpoints",
    "slab",
]

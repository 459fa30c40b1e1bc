"""ncmflow: the cPAN@NCM811 Ni-migration DFT study as reproducible workflows."""

import os

__version__ = "0.1.0"


def idle_cores() -> int:
    """Cores not busy right now (≥ 1): thread pools that spin-wait (torch, OpenBLAS) must not
    take more, or they slow down many-fold next to another busy process."""
    return max(1, (os.cpu_count() or 1) - round(os.getloadavg()[0]))

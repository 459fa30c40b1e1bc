"""ncmflow: the cPAN@NCM811 Ni-migration DFT study as reproducible workflows."""

__version__ = "0.1.0"

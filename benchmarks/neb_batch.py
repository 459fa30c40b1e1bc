"""One NEB step's force evaluation, batched vs one image at a time (issue 12: target ≤ 0.5×).

The cPAN slab's subsurface hop (109 atoms), 3 moving images, each step the band is moved a
little (as an optimizer moves it) and ``NEB.get_forces()`` evaluated: by ncmflow's default
(one calculator per image, ``CountingCalculator`` around the engine's calculator) and by the
band-level hook (``band_neb`` + the engine's ``band_evaluator``: one batched model call, D3
per image). Also the model call alone (CHGNet's ``predict_graph`` on 3 graphs vs 3 calls), to
show where the difference comes from. Same process, same threads, medians of ``--repeat``.

    python benchmarks/neb_batch.py [--ml-models chgnet,sevennet] [--repeat 5] [--images 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from ncmflow.inputs.settings import PAPER


def band(images: int):
    from pymatgen.io.ase import AseAtomsAdaptor

    from ncmflow.structures import ni_hop_endpoints
    from ncmflow.structures.path import neb_images

    structures = neb_images(*ni_hop_endpoints("cpan", "subsurface", 0), n_images=images, method="linear")
    return [AseAtomsAdaptor().get_atoms(s) for s in structures]


def step_times(frames, ml_model: str, batch: bool, repeat: int) -> tuple[list[float], np.ndarray]:
    from ncmflow.workflows.engines.mlip import band_evaluator, calculator
    from ncmflow.workflows.neb import CountingCalculator, band_neb

    frames = [f.copy() for f in frames]
    for f in frames:
        f.calc = CountingCalculator(calculator(PAPER.with_changes(ml_model=ml_model)))
    settings = PAPER.with_changes(ml_model=ml_model)
    neb = band_neb(frames, band_evaluator(settings) if batch else None, climb=True,
                   method="improvedtangent", allow_shared_calculator=False)
    rng = np.random.default_rng(0)
    neb.get_forces()  # warm-up: weights loaded, first graphs built
    times = []
    for _ in range(repeat):
        neb.set_positions(neb.get_positions() + rng.normal(0, 0.002, (len(neb), 3)))
        t0 = time.perf_counter()
        forces = neb.get_forces()
        times.append(time.perf_counter() - t0)
    return times, forces


def main() -> None:
    import torch

    from ncmflow.workflows.engines.mlip import torch_threads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ml-models", default="chgnet,sevennet")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--images", type=int, default=3)
    args = parser.parse_args()
    frames = band(args.images)
    print(f"NEB step at {len(frames[0])} atoms, {args.images} moving images, "
          f"{torch_threads()} torch threads (median of {args.repeat})")
    for ml_model in args.ml_models.split(","):
        one, f_one = step_times(frames, ml_model, False, args.repeat)
        many, f_many = step_times(frames, ml_model, True, args.repeat)
        a, b = statistics.median(one), statistics.median(many)
        print(f"{ml_model:10} one by one {a:6.2f} s   batched {b:6.2f} s   batched/one-by-one "
              f"{b / a:.2f}×  (target ≤ 0.50×)   |ΔF| ≤ {np.abs(f_one - f_many).max():.1e} eV/Å")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()

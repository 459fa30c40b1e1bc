#!/usr/bin/env python3
"""How `make install` sets up .venv here: with GPAW (the `dft` extra) or without it.

GPAW is compiled at install time against libxc and OpenBLAS (Debian: libxc-dev, libopenblas-dev).
The main job (CHGNet + D3) never needs it, so set-up must not stop where GPAW cannot be built:

| GPAW importable already | root | libraries | plan |
|---|---|---|---|
| yes (a cluster's GPAW) | any | any | no dft extra; the venv sees the system's packages |
| no | any | present | everything, GPAW built |
| no | yes | missing | apt-get install the libraries, then everything |
| no | no | missing | no dft extra; one line: what is skipped, how to get it |

Inputs, each overridable (1/0) so the decision is testable without root:
``NCMFLOW_AS_ROOT`` (default: effective uid 0), ``NCMFLOW_SYSTEM_LIBS`` (default: ``dpkg -s``
of the packages succeeds, or ``pkg-config --exists libxc`` where there is no dpkg),
``NCMFLOW_GPAW_PROVIDED`` (default: ``import gpaw`` works in the Python that creates the venv).

Prints shell assignments for the Makefile to ``eval``; ``--explain`` prints the decision in words.
Standard library only: it runs before the venv exists.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

PACKAGES = ("libxc-dev", "libopenblas-dev")
ALL_EXTRAS = "mlip,dft,hpc,test"
NO_DFT_EXTRAS = "mlip,hpc,test"
HOW_TO_GET = (f"to get it: as root `apt-get install {' '.join(PACKAGES)}`, then `rm .venv/.installed && "
              "make install`; or load a GPAW your cluster provides (e.g. `module load gpaw`) before "
              "`make install`")


def _flag(name: str) -> bool | None:
    value = os.environ.get(name, "").strip().lower()
    if value in ("1", "yes", "true"):
        return True
    if value in ("0", "no", "false"):
        return False
    if value:
        raise SystemExit(f"install_plan: {name}={value!r}: use 1 or 0")
    return None


def is_root() -> bool:
    forced = _flag("NCMFLOW_AS_ROOT")
    return os.geteuid() == 0 if forced is None else forced


def system_libs() -> bool:
    forced = _flag("NCMFLOW_SYSTEM_LIBS")
    if forced is not None:
        return forced
    if shutil.which("dpkg"):
        check = ["dpkg", "-s", *PACKAGES]
    elif shutil.which("pkg-config"):
        check = ["pkg-config", "--exists", "libxc"]
    else:
        return False
    return subprocess.run(check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def gpaw_provided() -> bool:
    forced = _flag("NCMFLOW_GPAW_PROVIDED")
    if forced is not None:
        return forced
    probe = subprocess.run([sys.executable, "-c", "import gpaw, _gpaw"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return probe.returncode == 0


def plan(root: bool, libs: bool, provided: bool) -> dict[str, str]:
    """The decision: APT (install the libraries first), EXTRAS, VENV_FLAGS, NOTE (one line, empty
    when GPAW is installed as usual) and APT_FAILED_NOTE (the note if apt-get fails)."""
    skipped = "GPAW (the `dft` extra: --engine gpaw, --electronic) not installed: "
    result = {"APT": "0", "EXTRAS": ALL_EXTRAS, "NO_DFT_EXTRAS": NO_DFT_EXTRAS, "VENV_FLAGS": "",
              "PACKAGES": " ".join(PACKAGES), "NOTE": "", "APT_FAILED_NOTE": ""}
    if provided:
        result.update(EXTRAS=NO_DFT_EXTRAS, VENV_FLAGS="--system-site-packages",
                      NOTE="GPAW is already importable (a GPAW this system provides): not built; "
                           ".venv uses it (created with --system-site-packages)")
    elif libs:
        pass
    elif root:
        result.update(APT="1", APT_FAILED_NOTE=skipped + f"`apt-get install {' '.join(PACKAGES)}` failed; "
                      + HOW_TO_GET + "; the main job (CHGNet + D3) does not need it")
    else:
        result.update(EXTRAS=NO_DFT_EXTRAS,
                      NOTE=skipped + f"{', '.join(PACKAGES)} missing and installing them needs root; "
                      + HOW_TO_GET + "; the main job (CHGNet + D3) does not need it")
    return result


def main(argv: list[str]) -> int:
    root, libs, provided = is_root(), system_libs(), gpaw_provided()
    decision = plan(root, libs, provided)
    if "--explain" in argv:
        print(f"root: {'yes' if root else 'no'}; {' '.join(PACKAGES)}: {'present' if libs else 'missing'}; "
              f"GPAW importable already: {'yes' if provided else 'no'}")
        steps = [f"apt-get install {decision['PACKAGES']}"] if decision["APT"] == "1" else []
        steps.append(f"pip install -e '.[{decision['EXTRAS']}]'"
                     + (f" into a venv {decision['VENV_FLAGS']}" if decision["VENV_FLAGS"] else ""))
        print("plan: " + ", then ".join(steps))
        if decision["NOTE"]:
            print(decision["NOTE"])
        return 0
    for key, value in decision.items():
        print(f"{key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

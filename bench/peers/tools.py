"""The tools of the peer benchmark: their pinned versions (here, and only here), their venvs, and
the versions every target actually ran with.

izzati and the FastAPI baseline run from the main environment. LitServe and BentoML each get a
venv under .cache/ (gitignored), made by the first run that needs it and made again whenever the
pins change; each venv also gets the main environment's numpy version, so that every target
computes with the same numpy and BLAS.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench.runner import REPO, log

__all__ = ["PINS", "TOOLS", "PEERS", "P1_ONLY", "venv_python", "ensure_venv", "versions"]

PINS = {"litserve": "litserve==0.2.19", "bentoml": "bentoml==1.4.40"}
"""The peers, pinned: the newest releases on the package index when this bench was written."""

MODEL_PINS = ["torch==2.14.1", "torchvision==0.29.1"]
"""P4's model (ResNet-18) in LitServe's venv, the versions of the main environment (its `bench` extra)."""

PEERS = tuple(PINS)
TOOLS = ("izzati", "izzati-async", "asgi", "fastapi", *PEERS)
"""Every target's tool; izzati-async (an `async def` callback) and asgi (no framework) serve P1 only."""
P1_ONLY = ("izzati-async", "asgi")

CACHE = REPO / ".cache"
# what each target's report lists: the serving stack under it
_SHOWN = {
    "main": ["torch", "torchvision", "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "pydantic", "numpy"],
    "litserve": [
        "litserve",
        "torch",
        "torchvision",
        "fastapi",
        "starlette",
        "uvicorn",
        "uvloop",
        "httptools",
        "pyzmq",
        "pydantic",
        "numpy",
    ],
    "bentoml": ["bentoml", "starlette", "uvicorn", "pydantic", "numpy"],
}


def _requirements(tool: str) -> list[str]:
    return [PINS[tool], f"numpy=={version('numpy')}", *(MODEL_PINS if tool == "litserve" else [])]


def venv_name(tool: str) -> str:
    """`tool`'s venv folder under .cache/: named by its pins, so checkouts with other pins (other
    branches sharing .cache) each keep their own instead of remaking one another's."""
    digest = hashlib.sha256(json.dumps(_requirements(tool)).encode()).hexdigest()[:8]
    return f"venv-{tool}-{digest}"


def venv_python(tool: str) -> Path:
    """The python of `tool`'s venv."""
    return CACHE / venv_name(tool) / "bin" / "python"


def ensure_venv(tool: str) -> str:
    """Make `tool`'s venv if it is missing or pinned differently: '' when it is ready, else why not."""
    python, wanted = venv_python(tool), _requirements(tool)
    stamp = python.parent.parent / "bench-pins.json"
    if python.exists() and stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return ""
    log(f"installing {' '.join(wanted)} into .cache/{venv_name(tool)} (once; a minute or two)")
    install_log = CACHE / f"{venv_name(tool)}-install.log"
    try:
        CACHE.mkdir(exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(python.parent.parent)], check=True)
        with open(install_log, "wb") as out:
            pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *wanted]
            subprocess.run(pip, check=True, stdout=out, stderr=subprocess.STDOUT, timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        return f"could not install {' '.join(wanted)} ({exc}); see {install_log.relative_to(REPO)}"
    stamp.write_text(json.dumps(wanted))
    return ""


def _installed(python: str, names: list[str]) -> dict[str, str]:
    code = (
        "import json, sys\nfrom importlib.metadata import version, PackageNotFoundError\nout = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try: out[name] = version(name)\n"
        "    except PackageNotFoundError: out[name] = 'absent'\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run([python, "-c", code, *names], capture_output=True, text=True)
    found: dict[str, str] = json.loads(done.stdout) if done.returncode == 0 else {}
    return found


def versions(peers: list[str]) -> dict[str, str]:
    """'where: name version, ...' for the main environment and each peer's venv."""
    out: dict[str, str] = {}
    main = {}
    for name in _SHOWN["main"]:
        try:
            main[name] = version(name)
        except PackageNotFoundError:
            main[name] = "absent"
    out["izzati and FastAPI (main environment)"] = ", ".join(f"{k} {v}" for k, v in main.items())
    for tool in peers:
        found = _installed(str(venv_python(tool)), _SHOWN[tool])
        out[f"{tool} (.cache/{venv_name(tool)})"] = ", ".join(f"{k} {v}" for k, v in found.items())
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    out["wrk"] = (wrk.stdout + wrk.stderr).split("Copyright")[0].replace("wrk", "").strip()
    return out

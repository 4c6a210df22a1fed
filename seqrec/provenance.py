"""Where a result came from: git commit, clean tree, package versions, device, peak memory."""
from __future__ import annotations

import os
import platform
import re
import resource
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def git_state() -> dict:
    """``{"commit": sha or None, "clean": bool or None}`` of the checkout the package runs from.

    ``SEQREC_GIT_COMMIT`` (with ``SEQREC_GIT_CLEAN=1`` when the code is exactly that commit's) overrides git: a lent
    GPU machine gets a copy of the working tree whose ``.git`` still points at the session's first commit, so git
    there names a commit the code is not (and calls the tree dirty)."""
    given = os.environ.get("SEQREC_GIT_COMMIT")
    if given:
        return {"commit": given, "clean": os.environ.get("SEQREC_GIT_CLEAN") == "1"}
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return {"commit": None, "clean": None}
        status = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"],
                                capture_output=True, text=True, timeout=10)
        return {"commit": commit.stdout.strip(), "clean": status.stdout.strip() == ""}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "clean": None}


def versions() -> dict:
    import numpy

    from . import __version__

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__, "seqrec": __version__}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"{cpu} ({threads} thread{'s' if threads != 1 else ''})"


def kernels(device: torch.device) -> str:
    """The instruction set the device's numeric kernels are picked for: on CPU, ATen's dispatch level
    (``torch.backends.cpu.get_cpu_capability()``: ``"AVX512"``, ``"AVX2"``, ...; ``ATEN_CPU_CAPABILITY`` lowers it),
    with MKL's and oneDNN's limits where the environment sets them (``"AVX512 (MKL_ENABLE_INSTRUCTIONS=AVX2)"``;
    unset, they follow the host as ATen does), on CUDA the compute capability (``"sm_90"``). Hosts that differ here
    round some sums differently, so one seed gives metrics that agree only to about the seventh digit;
    :func:`device_name` cannot tell them apart where a virtual machine names its CPU "AMD EPYC" whatever its
    generation."""
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"sm_{major}{minor}"
    held = [f"{name}={os.environ[name]}" for name in ("MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA") if os.environ.get(name)]
    capability = torch.backends.cpu.get_cpu_capability()
    return f"{capability} ({', '.join(held)})" if held else capability


def device_label(name) -> str:
    """A stored device name as shown: ``None`` -> ``"unknown"``, and the plural fixed for one thread
    (``"AMD EPYC (1 threads)"``, as runs stored before :func:`device_name` wrote the singular say, ->
    ``"AMD EPYC (1 thread)"``)."""
    return re.sub(r"\(1 threads\)$", "(1 thread)", str(name)) if name else "unknown"


def peak_memory_mb(device: torch.device) -> float:
    """CUDA: max allocated since the last reset. CPU: the process's peak resident set size (``VmHWM`` on Linux,
    which starts afresh at exec and at :func:`reset_peak_memory`, unlike ``ru_maxrss``)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def reset_peak_memory(device: torch.device) -> None:
    """Start a new high-water mark: CUDA's peak stats, or on Linux the process's VmHWM (reset to the current RSS
    through ``/proc/self/clear_refs``; where that is not allowed the CPU figure stays process-wide)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass

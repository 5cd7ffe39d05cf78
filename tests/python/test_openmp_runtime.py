"""muonlab's CPU loops run on torch's own OpenMP runtime: a second runtime
beside it made the Muon step 1.25-2.2x slower and left torch.set_num_threads
without effect on them. setup.py links the runtime torch uses; import
warns where that failed."""
import os
import subprocess
import sys

import pytest
import torch

import muonlab
from muonlab import _C


def test_muonlab_runs_on_torchs_openmp_runtime():
    library, shared = _C.openmp_runtime()
    assert shared, f"muonlab's OpenMP runtime {library} is not torch's"
    assert "omp" in library.rsplit("/", 1)[-1], library


def test_probe_leaves_torchs_thread_count_as_it_was():
    before = torch.get_num_threads()
    _C.openmp_runtime()
    assert torch.get_num_threads() == before


def test_import_warns_when_the_runtimes_differ(monkeypatch):
    monkeypatch.setattr(_C, "openmp_runtime", lambda: ("/opt/other/libomp.so.5", False))
    with pytest.warns(RuntimeWarning, match=r"/opt/other/libomp\.so\.5, not on torch's own"):
        muonlab._warn_if_a_second_openmp_runtime()


def openmp_wait_in_a_fresh_python(**variables):
    chosen = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "MUONLAB_DEFAULT_GOMP_SPINCOUNT")
    env = {k: v for k, v in os.environ.items() if k not in chosen}
    env.update(variables)
    code = "from muonlab import _C; print(_C.openmp_wait())"
    return subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_reports_how_idle_threads_wait_and_who_chose():
    # Python, unlike the muonlab executable, cannot choose for itself: libgomp
    # has read its variables before muonlab is imported.
    assert openmp_wait_in_a_fresh_python() == "libgomp's default (GOMP_SPINCOUNT=300000)"
    assert openmp_wait_in_a_fresh_python(GOMP_SPINCOUNT="10000") == "GOMP_SPINCOUNT=10000 (from the environment)"
    assert (openmp_wait_in_a_fresh_python(OMP_WAIT_POLICY="passive")
            == "OMP_WAIT_POLICY=passive (from the environment)")

"""Start-up of the command line: numpy's OpenBLAS starts no worker threads (the planner does no BLAS
work; the threads cost 0.04-0.07 s CPU per process on 2 cores), unless the user asks for them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

THREADS = """
import os
import planner.cli  # before numpy, as `python -m planner` and the `planner` script import it
import numpy
blas = numpy.__config__.CONFIG.get("Build Dependencies", {}).get("blas", {}).get("name", "")
print(os.environ["OPENBLAS_NUM_THREADS"], len(os.listdir("/proc/self/task")), "openblas" in blas)
"""


def _run(env: dict) -> list[str]:
    r = subprocess.run([sys.executable, "-c", THREADS], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.split()


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through Linux's /proc")
def test_cli_starts_numpy_without_blas_threads():
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    value, threads, openblas = _run(env)
    assert value == "1"
    if openblas != "True":
        pytest.skip("numpy is not built with OpenBLAS")
    assert int(threads) == 1  # the interpreter's own thread only


def test_cli_keeps_the_users_blas_threads():
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    value, _, _ = _run(env)
    assert value == "2"


FAULTS = """
import resource
import planner.cli  # sets malloc's thresholds (glibc)
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
before = faults()
for mib in (1, 2, 4, 8, 16, 24):  # ever larger blocks, each freed before the next, as a search's arrays
    for _ in range(3):
        block = bytearray(mib * 2**20)
        block[::4096] = bytes(len(block[::4096]))  # touch every page
        del block
print(faults() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_blocks_are_reused_not_faulted_in_again():
    """With the command line's malloc settings, freed blocks up to 32 MiB stay in the heap: touching
    18 blocks of 1-24 MiB faults in about the largest one's pages (6,144), not each block's anew
    (glibc's defaults: ~20,000 here)."""
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc's malloc")
    r = subprocess.run([sys.executable, "-c", FAULTS], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout) < 2 * 24 * 2**20 // 4096


LARGE_FAULTS = """
import resource, threading
import planner.cli  # sets malloc's options (glibc)
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def touch(mib):
    block = bytearray(mib * 2**20)
    block[::4096] = bytes(len(block[::4096]))  # touch every page
    del block
before = faults()
for mib in (40, 64, 64):  # blocks beyond the mmap threshold (32 MiB), each freed before the next
    touch(mib)
large = faults() - before
turn = [threading.Event() for _ in range(6)]
def worker(mine):  # two threads taking turns: a block freed by one is reused by the other
    for i in mine:
        if i:
            turn[i - 1].wait()
        touch(16)
        turn[i].set()
threads = [threading.Thread(target=worker, args=(range(j, 6, 2),)) for j in (0, 1)]
before = faults()
for th in threads:
    th.start()
for th in threads:
    th.join()
print(large, faults() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_large_blocks_and_other_threads_reuse_freed_memory():
    """With the command line's malloc settings, blocks beyond 32 MiB come from the heap too (freed, they
    stay there: three blocks of 40-64 MiB fault in about the largest one's 16,384 pages, not 43,000 as
    glibc maps each anew), and threads share one arena (two threads taking turns on 16 MiB blocks fault
    in about one block's 4,096 pages, not one block per thread)."""
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc's malloc")
    r = subprocess.run([sys.executable, "-c", LARGE_FAULTS], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    large, threads = map(int, r.stdout.split())
    assert large < 1.3 * 64 * 2**20 // 4096 and threads < 1.5 * 16 * 2**20 // 4096, (large, threads)


HUGEPAGES = """
import planner.cli  # before numpy, as `python -m planner` and the `planner` script import it
import numpy._core.multiarray as m
print(int(m._get_madvise_hugepage()) if hasattr(m, "_get_madvise_hugepage") else "unknown")
"""


def _hugepage_flag(env: dict) -> str:
    r = subprocess.run([sys.executable, "-c", HUGEPAGES], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="numpy asks for huge pages on Linux only")
def test_cli_asks_numpy_for_ordinary_pages():
    """numpy's default on Linux is madvise(MADV_HUGEPAGE) on arrays of 4 MiB or more; the command line
    turns it off (planner.cli), and keeps a value the user set."""
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    flag = _hugepage_flag(env)
    if flag == "unknown":
        pytest.skip("this numpy does not say whether it asks for huge pages")
    assert flag == "0"
    assert _hugepage_flag({**env, "NUMPY_MADVISE_HUGEPAGE": "1"}) == "1"


SOLVE_IMPORTS = """
import sys
from planner.cli import main  # what `python -m planner` runs
try:
    main(["solve", "scenarios/32b_8gpu.yaml", "--json"])
except SystemExit as e:
    assert not e.code, e.code
print(" ".join(m for m in ("planner.spec.purchase", "planner.spec.serving") if m in sys.modules))
"""


def test_solve_imports_no_purchase_nor_serving_models():
    """A `planner solve` imports neither the purchase nor the serving input models (telling a purchase
    file from a scenario needs neither: planner.spec.load.is_purchase)."""
    r = subprocess.run([sys.executable, "-c", SOLVE_IMPORTS], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split("\n")[-2] == "", r.stdout[-300:]


CATALOG_FILES = """
import sys
from planner.catalog import catalog_file_text
text, where = catalog_file_text("gpus.yaml")
print("importlib.resources" in sys.modules, where, len(text))
"""


def test_catalog_files_without_importlib_resources(tmp_path):
    """A catalog file is read from the folder of the installed package planner.catalogs (the file
    importlib.resources.files names) and, without an install, from the source tree's catalogs/; in
    neither case is importlib.resources imported (with tempfile and zipfile: start-up time)."""
    import shutil

    for installed in (False, True):
        site = tmp_path / ("installed" if installed else "source")
        shutil.copytree(ROOT / "planner", site / "planner", ignore=shutil.ignore_patterns("__pycache__"))
        if installed:  # the wheel's layout: catalogs/ as the package planner.catalogs
            shutil.copytree(ROOT / "catalogs", site / "planner" / "catalogs",
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copytree(ROOT / "catalogs", site / "catalogs", ignore=shutil.ignore_patterns("__pycache__"))
        env = {**os.environ, "PYTHONPATH": str(site)}
        r = subprocess.run([sys.executable, "-S", "-c", CATALOG_FILES], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120, env=env)
        assert r.returncode == 0, r.stderr[-2000:]
        imported, where, size = r.stdout.split()
        expected = site / "planner" / "catalogs" / "gpus.yaml" if installed else site / "catalogs" / "gpus.yaml"
        assert imported == "False"
        assert where == str(expected)
        assert int(size) == len((ROOT / "catalogs" / "gpus.yaml").read_text(encoding="utf-8"))


class _FakeSpinner:
    def __init__(self, log: list):
        self.log = log

    def start(self):
        self.log.append("start")

    def stop(self):
        self.log.append("stop")


class _FakeErr:
    def __init__(self):
        self.log: list[str] = []

    def status(self, text, spinner=None):
        self.log.append(text)
        return _FakeSpinner(self.log)


def test_quick_search_shows_no_spinner(monkeypatch):
    """A one-count search over before SPINNER_AFTER_S starts no spinner (and so needs no rich)."""
    from planner import cli

    fake = _FakeErr()
    monkeypatch.setattr(cli, "err", fake)
    monkeypatch.setattr(cli, "SPINNER_AFTER_S", 30.0)
    monkeypatch.setattr(cli.sys.stderr, "isatty", lambda: True, raising=False)
    assert cli._with_progress(lambda progress: ("done", progress), 1) == ("done", None)
    assert fake.log == []


def test_long_search_spinner_starts_and_stops(monkeypatch):
    """Past SPINNER_AFTER_S the spinner is shown, and it is stopped when the work ends, by a return
    or by an error."""
    import threading

    from planner import cli

    fake = _FakeErr()
    monkeypatch.setattr(cli, "err", fake)
    monkeypatch.setattr(cli, "SPINNER_AFTER_S", 0.01)
    monkeypatch.setattr(cli.sys.stderr, "isatty", lambda: True, raising=False)

    def work(progress):
        for _ in range(500):  # until the timer thread has started the spinner (at most 5 s)
            if "start" in fake.log:
                break
            threading.Event().wait(0.01)
        return fake.log.copy()

    seen = cli._with_progress(work, 1)
    assert seen == ["searching the plan space...", "start"]
    assert fake.log == ["searching the plan space...", "start", "stop"]

    fake.log.clear()

    def failing(progress):
        work(progress)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        cli._with_progress(failing, 1)
    assert fake.log == ["searching the plan space...", "start", "stop"]

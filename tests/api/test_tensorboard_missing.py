"""``--tensorboard`` (and ``Timelapse(tensorboard=True)``) without the tensorboard package: a usage
error while the arguments are read, before anything is written. The package is hidden honestly,
in a fresh interpreter whose import system refuses it."""

from __future__ import annotations

import subprocess
import sys

HIDE_TENSORBOARD = """
import importlib.abc, sys

class NoTensorBoard(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorboard":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoTensorBoard())
"""


def _run(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HIDE_TENSORBOARD + code], capture_output=True, text=True, cwd=cwd)


def test_the_flag_without_the_package_is_a_usage_error_before_anything_runs(tmp_path):
    code = ("import atexit\n"
            "atexit.register(lambda: print(sorted({'torch', 'matplotlib', 'sklearn'} & set(sys.modules))))\n"
            "from latentlapse.xray.cli import train_main\n"
            "sys.exit(train_main(['--tensorboard', '--epochs', '2', '--runs_dir', 'runs']))\n")
    done = _run(code, tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "main.py: error: --tensorboard needs the optional package 'tensorboard': "
        "pip install 'latentlapse[tensorboard]' (or drop --tensorboard)"]
    assert done.stdout.strip() == "[]"  # no heavy import for a usage error
    assert not (tmp_path / "runs").exists()


def test_the_api_refuses_at_construction(tmp_path):
    code = ("from latentlapse import Timelapse\n"
            "from latentlapse import MissingExtraError\n"
            "try:\n"
            "    Timelapse('runs', class_names=['a', 'b'], epochs=2, tensorboard=True)\n"
            "except MissingExtraError as exc:  # importable where LIBRARY.md names it\n"
            "    print(type(exc).__name__, exc)\n")
    done = _run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("MissingExtraError TensorBoard export needs the optional package 'tensorboard': "
                                   "pip install 'latentlapse[tensorboard]'")
    assert not (tmp_path / "runs").exists()

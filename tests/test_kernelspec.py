"""The kernelspec `kernelsvc install` writes: argv (with the default output budget) and
metadata (the provisioner, and the debugger flag following debugpy)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from kernelsvc.supervisor import kernelspec
from tests.helpers.kernel import KERNELSVC

BASE_ARGV = [sys.executable, "-m", "kernelsvc.supervisor", "start", "-f", "{connection_file}"]


def test_default_argv_carries_the_per_cell_output_budget():
    spec = kernelspec.kernelspec("KS", {})
    assert kernelspec.DEFAULT_MAX_OUTPUT_BYTES == "1M"
    assert spec["argv"] == [*BASE_ARGV, "--max-output-bytes", "1M"]
    assert spec["display_name"] == "KS" and spec["language"] == "python"
    assert spec["interrupt_mode"] == "signal" and "env" not in spec


@pytest.mark.parametrize("size", ["4M", "500K", "1048576"])
def test_another_budget_is_passed_as_given(size):
    assert kernelspec.kernelspec("KS", {}, max_output_bytes=size)["argv"] == [
        *BASE_ARGV, "--max-output-bytes", size]


@pytest.mark.parametrize("off", [None, "0", "0M"])
def test_no_budget_means_no_flag(off):
    assert kernelspec.kernelspec("KS", {}, max_output_bytes=off)["argv"] == BASE_ARGV


def test_a_size_kernelsvc_start_would_refuse_is_refused_at_install():
    with pytest.raises(ValueError, match="not a size"):
        kernelspec.kernelspec("KS", {}, max_output_bytes="lots")


def test_metadata_names_the_provisioner_and_env_is_kept():
    spec = kernelspec.kernelspec("KS", {"A": "1"})
    assert spec["metadata"]["kernel_provisioner"] == {"provisioner_name": "kernelsvc"}
    assert spec["env"] == {"A": "1"}


def test_debugger_follows_whether_debugpy_is_importable(monkeypatch):
    installed = importlib.util.find_spec("debugpy") is not None
    assert kernelspec.kernelspec("KS", {})["metadata"]["debugger"] is installed

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "debugpy" else real(name, *a))
    assert kernelspec.kernelspec("KS", {})["metadata"]["debugger"] is False


def test_install_writes_the_spec_to_the_prefix(tmp_path):
    where = kernelspec.install("ks-none", "KS", user=False, prefix=str(tmp_path), env={},
                               max_output_bytes=None)
    assert json.loads((tmp_path / "share/jupyter/kernels/ks-none/kernel.json").read_text())[
        "argv"] == BASE_ARGV
    assert where.endswith("ks-none")


def install(tmp_path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([*KERNELSVC, "install", "--prefix", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=60)


def installed_argv(tmp_path) -> list[str]:
    return json.loads((tmp_path / "share/jupyter/kernels/kernelsvc/kernel.json").read_text())[
        "argv"]


@pytest.mark.timeout(120)
def test_kernelsvc_install_writes_the_default_budget(tmp_path):
    result = install(tmp_path)
    assert result.returncode == 0, result.stderr
    spec = json.loads((tmp_path / "share/jupyter/kernels/kernelsvc/kernel.json").read_text())
    assert spec["argv"] == [*BASE_ARGV, "--max-output-bytes", kernelspec.DEFAULT_MAX_OUTPUT_BYTES]
    assert spec["metadata"]["debugger"] is (importlib.util.find_spec("debugpy") is not None)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("given", "tail"), [("4M", ["--max-output-bytes", "4M"]), ("0", [])])
def test_kernelsvc_install_max_output_bytes_changes_or_removes_it(tmp_path, given, tail):
    result = install(tmp_path, "--max-output-bytes", given)
    assert result.returncode == 0, result.stderr
    assert installed_argv(tmp_path) == [*BASE_ARGV, *tail]


@pytest.mark.timeout(120)
def test_kernelsvc_install_refuses_a_bad_size(tmp_path):
    result = install(tmp_path, "--max-output-bytes", "lots")
    assert result.returncode == 2 and "--max-output-bytes" in result.stderr, result.stderr
    assert not (tmp_path / "share").exists()

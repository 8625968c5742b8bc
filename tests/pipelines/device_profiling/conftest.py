"""Fixtures for the device-profiling tests: a stand-in `adb` first on PATH (the script in
fixtures/fake_adb.py, answering from a scenario with recorded benchmark_model outputs), stand-in
benchmark_model binaries, the project's profiling settings, and the evaluation tests' tiny TFLite
files (a few-layer Keras model at 32 px, converted once per session)."""

from __future__ import annotations

import json
import os
import sys
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PROJECT_ROOT
from tests.pipelines.evaluation.conftest import (  # noqa: F401  (fixtures reused here)
    crop_paths,
    crops_root,
    tiny_model,
    tiny_tflite,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SERIAL = "ZY2242HJ7Q"
MOTO_G6 = {
    "ro.board.platform": "msm8953",
    "ro.build.version.release": "9",
    "ro.build.version.sdk": "28",
    "ro.product.cpu.abi": "armeabi-v7a",
    "ro.product.cpu.abilist": "armeabi-v7a,armeabi",
    "ro.product.device": "ali",
    "ro.product.manufacturer": "motorola",
    "ro.product.model": "moto g(6)",
}
ELF_MACHINES = {"armeabi-v7a": (1, 0x28), "arm64-v8a": (2, 0xB7), "x86_64": (2, 0x3E)}


def elf_stub(abi: str) -> bytes:
    """The first bytes of an ELF executable for ``abi`` (all binary_abi reads), then padding."""
    bits, machine = ELF_MACHINES[abi]
    ident = b"\x7fELF" + bytes([bits, 1, 1, 0]) + bytes(8)
    return ident + (2).to_bytes(2, "little") + machine.to_bytes(2, "little") + bytes(44)


@dataclass
class FakeAdb:
    """The stand-in adb of one test: its scenario, the argv of every call, the device's files."""

    scenario_path: Path
    log_path: Path
    device_root: Path
    binary: Path  # a local "benchmark_model" for the scenario's ABI

    def set(self, **changes: Any) -> None:
        scenario = json.loads(self.scenario_path.read_text())
        scenario.update(changes)
        self.scenario_path.write_text(json.dumps(scenario))

    def calls(self) -> list[list[str]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]

    def shell_calls(self, first_word: str) -> list[list[str]]:
        """The ``shell`` calls whose command starts with ``first_word`` (a path may be partial)."""
        return [c for c in self.calls() if c[2:3] == ["shell"] and first_word in c[3]]

    def left_on_device(self) -> list[str]:
        return sorted(str(p.relative_to(self.device_root)) for p in self.device_root.rglob("*"))


@pytest.fixture
def fake_adb(tmp_path, monkeypatch) -> FakeAdb:
    """`adb` on PATH answering as one attached Moto G6 (armeabi-v7a, Android 9) with the
    recorded CPU run; change the scenario with ``fake_adb.set(...)``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "adb"
    script.write_text(f"#!{sys.executable}\n" + (FIXTURES / "fake_adb.py").read_text())
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    device_root = tmp_path / "device"
    device_root.mkdir()
    binary = tmp_path / "android_arm_benchmark_model"
    binary.write_bytes(elf_stub("armeabi-v7a"))
    fake = FakeAdb(tmp_path / "scenario.json", tmp_path / "adb_calls.jsonl", device_root, binary)
    fake.scenario_path.write_text(
        json.dumps(
            {
                "devices": f"List of devices attached\n{SERIAL}\tdevice\n\n",
                "getprop": MOTO_G6,
                "benchmark": [{"match": "", "output": "phone_cpu.txt"}],
                "device_root": str(device_root),
                "log": str(fake.log_path),
                "fixtures": str(FIXTURES),
            }
        )
    )
    monkeypatch.setenv("FAKE_ADB_SCENARIO", str(fake.scenario_path))
    return fake


@pytest.fixture(scope="session")
def default_profiling() -> dict[str, Any]:
    """``device_profiling`` as conf/base sets it."""
    path = PROJECT_ROOT / "conf" / "base" / "parameters_device_profiling.yml"
    return yaml.safe_load(path.read_text())["device_profiling"]


def phone_profiling(default: dict[str, Any], binary: Path, **changes: Any) -> dict[str, Any]:
    """The default settings with ``binary`` as the phone's benchmark_model, short time-outs, and
    ``changes`` (``phone={...}`` merges into the phone section)."""
    profiling = deepcopy(default)
    profiling["phone"]["benchmark_model"] = str(binary)
    profiling["timeouts_s"] = {"adb": 10, "push": 10, "benchmark": 10}
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(profiling.get(key), dict):
            profiling[key].update(value)
        else:
            profiling[key] = value
    return profiling

"""The phone: an Android device seen by ``adb``, with TFLite's benchmark_model pushed to it.

Every adb call is an argument list with a time-out. A failure raises :class:`AdbError`, whose
``cause`` names it: ``adb not found``, ``no device``, ``unauthorized``, ``offline``,
``no permissions``, ``several devices``, ``push failed``, ``not executable``, ``time-out`` or
``command failed``. Whatever is pushed (the binary, each model) gets a name of its own under the
device folder and is removed again, also after a failure.
"""

from __future__ import annotations

import logging
import re
import shlex
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pediatric_emotion.pipelines.device_profiling.benchmark_output import run_record
from pediatric_emotion.pipelines.device_profiling.commands import (
    BenchmarkSettings,
    CommandTimeoutError,
    run_command,
)

logger = logging.getLogger(__name__)

NO_DEVICE_CAUSES = ("adb not found", "no device")
"""Causes that mean "no phone here" (``target: auto`` then profiles on the host)."""

DEVICE_PROPERTIES = {
    "manufacturer": "ro.product.manufacturer",
    "model": "ro.product.model",
    "platform": "ro.board.platform",
    "abi": "ro.product.cpu.abi",
    "abilist": "ro.product.cpu.abilist",
    "android_version": "ro.build.version.release",
    "sdk": "ro.build.version.sdk",
}
_STATE_HINTS = {
    "unauthorized": "accept the 'Allow USB debugging?' dialog on the phone",
    "offline": "reconnect the cable, or run `adb reconnect`",
    "no permissions": "this user cannot open the USB device: check the udev rules (plugdev group)",
}
# adb's own messages ("error: ..." from older builds, "adb: ..." from newer ones)
_OUTPUT_CAUSES = tuple(
    (re.compile(rf"^(?:error|adb): {message}", re.MULTILINE), cause)
    for message, cause in (
        ("device unauthorized", "unauthorized"),
        ("device offline", "offline"),
        ("(?:no devices/emulators|device '[^']*' not) found", "no device"),
        ("more than one device", "several devices"),
    )
)
_NOT_EXECUTABLE = re.compile(
    r"Permission denied|not executable|can't execute|cannot execute|Exec format error|not found"
)
# ELF (class, e_machine) -> Android ABI
ELF_ABIS = {(2, 0xB7): "arm64-v8a", (1, 0x28): "armeabi-v7a", (2, 0x3E): "x86_64", (1, 0x03): "x86"}


class AdbError(RuntimeError):
    """An adb step failed; ``cause`` names why, ``output`` is what adb printed."""

    def __init__(self, cause: str, message: str, output: str = "") -> None:
        super().__init__(f"adb: {cause}: {message}")
        self.cause = cause
        self.output = output


@dataclass(frozen=True)
class PhoneSettings:
    """``device_profiling.phone`` and the shared run settings, checked."""

    adb: str
    serial: str | None
    benchmark_model: Path | None
    device_dir: str
    benchmark: BenchmarkSettings
    timeouts: Mapping[str, float]

    @classmethod
    def from_config(cls, profiling: Mapping[str, Any]) -> PhoneSettings:
        """Read ``device_profiling`` (its ``phone`` section and ``timeouts_s``)."""
        phone = profiling.get("phone") or {}
        binary = phone.get("benchmark_model")
        device_dir = str(phone.get("device_dir") or "/data/local/tmp").rstrip("/")
        if not device_dir.startswith("/"):
            raise ValueError(f"device_profiling.phone.device_dir must be absolute: {device_dir!r}")
        timeouts = {"adb": 30.0, "push": 120.0, "benchmark": 300.0}
        timeouts.update({k: float(v) for k, v in (profiling.get("timeouts_s") or {}).items()})
        return cls(
            adb=str(phone.get("adb") or "adb"),
            serial=str(phone["serial"]) if phone.get("serial") else None,
            benchmark_model=Path(binary).expanduser() if binary else None,
            device_dir=device_dir,
            benchmark=BenchmarkSettings.from_config(profiling, phone, "device_profiling.phone"),
            timeouts=timeouts,
        )


def parse_devices(output: str) -> list[tuple[str, str]]:
    """(serial, state) of every device ``adb devices`` lists."""
    devices = []
    for raw in output.splitlines():
        line = raw.strip()
        if not line or line.startswith(("List of devices", "*", "adb server")):
            continue
        serial, _, state = line.partition("\t") if "\t" in line else line.partition(" ")
        state = state.strip()
        # `adb devices -l` appends "usb:... product:... model:..."; "no permissions (...)" stays
        state = "no permissions" if state.startswith("no permissions") else state.split(" ")[0]
        devices.append((serial.strip(), state))
    return devices


def select_device(devices: list[tuple[str, str]], serial: str | None) -> str:
    """The serial to use: the configured one, or the only device attached."""
    if serial is not None:
        states = dict(devices)
        if serial not in states:
            attached = ", ".join(f"{s} ({state})" for s, state in devices) or "none"
            raise AdbError("no device", f"device {serial!r} is not attached (attached: {attached})")
        candidates = [(serial, states[serial])]
    else:
        candidates = devices
        if not devices:
            raise AdbError("no device", "adb lists no attached device")
    ready = [s for s, state in candidates if state == "device"]
    if len(ready) > 1:
        raise AdbError(
            "several devices",
            f"{len(ready)} devices attached ({', '.join(ready)}): set "
            "device_profiling.phone.serial to the one to profile on",
        )
    if ready:
        return ready[0]
    bad_serial, state = candidates[0]
    cause = state if state in _STATE_HINTS else "offline"
    hint = _STATE_HINTS.get(state, f"adb reports its state as {state!r}")
    raise AdbError(cause, f"device {bad_serial} is {state}: {hint}")


def parse_getprop(output: str) -> dict[str, str]:
    """``[key]: [value]`` lines of ``getprop`` as a dict."""
    pattern = re.compile(r"^\[(?P<key>[^\]]+)\]: \[(?P<value>.*)\]\s*$")
    return {m["key"]: m["value"] for line in output.splitlines() if (m := pattern.match(line))}


def binary_abi(path: Path) -> str | None:
    """The Android ABI an ELF executable is built for (None when it is not a known ELF)."""
    with path.open("rb") as file:
        header = file.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    return ELF_ABIS.get((header[4], machine))


def _safe_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", label)


class Phone:
    """One attached device, addressed by serial."""

    def __init__(self, settings: PhoneSettings, serial: str) -> None:
        self.settings = settings
        self.serial = serial
        self.token = uuid.uuid4().hex[:8]  # names what this session pushes
        self._properties: dict[str, str] | None = None

    @classmethod
    def connect(cls, settings: PhoneSettings) -> Phone:
        """The configured device (or the only one attached), ready; AdbError naming the cause."""
        output = _adb([settings.adb, "devices"], settings, "adb", "adb devices")
        return cls(settings, select_device(parse_devices(output), settings.serial))

    def adb(self, *args: str, timeout: str = "adb", what: str) -> str:
        """Output of ``adb -s SERIAL args...``; AdbError naming the cause on a failure."""
        return _adb([self.settings.adb, "-s", self.serial, *args], self.settings, timeout, what)

    def properties(self) -> dict[str, str]:
        """Model, board platform, ABIs and Android version (``getprop``, read once)."""
        if self._properties is None:
            values = parse_getprop(self.adb("shell", "getprop", what="adb shell getprop"))
            self._properties = {name: values.get(k, "") for name, k in DEVICE_PROPERTIES.items()}
        return dict(self._properties)

    def describe(self) -> tuple[str, str]:
        """The target's name (``ro.product.model``) and details (maker, platform, ABI, Android)."""
        p = self.properties()
        details = (
            f"{p['manufacturer']} {p['model']}, {p['platform']}, {p['abi']}, Android "
            f"{p['android_version']} (SDK {p['sdk']}), serial {self.serial}"
        )
        return p["model"] or self.serial, details

    def push(self, local: Path, remote: str) -> None:
        """``adb push``; AdbError ``push failed`` (or the device's state) naming both paths."""
        try:
            self.adb("push", str(local), remote, timeout="push", what=f"adb push {local.name}")
        except AdbError as error:
            if error.cause != "command failed":
                raise
            last = (error.output.strip().splitlines() or [""])[-1]
            raise AdbError("push failed", f"{local} -> {remote}: {last}", error.output) from None

    def remove(self, *remote: str) -> None:
        """``rm -f`` on the device; a failure is logged (it must not hide the first error)."""
        try:
            self.adb("shell", "rm", "-f", *map(shlex.quote, remote), what="adb shell rm")
        except AdbError as error:
            logger.error("Could not remove %s from %s: %s", ", ".join(remote), self.serial, error)

    @contextmanager
    def installed_binary(self) -> Iterator[str]:
        """benchmark_model pushed and made executable (its ABI checked against the device's
        first); removed again on leaving, also after a failure."""
        binary = self.settings.benchmark_model
        if binary is None or not binary.is_file():
            raise FileNotFoundError(f"device_profiling.phone.benchmark_model: no file {binary}")
        abi = binary_abi(binary)
        abilist = self.properties()["abilist"].split(",")
        if abi is not None and abilist != [""] and abi not in abilist:
            raise AdbError(
                "not executable",
                f"{binary} is built for {abi}; the device runs {', '.join(abilist)}: use the "
                "benchmark_model build for its ABI (android_aarch64 / android_arm)",
            )
        remote = f"{self.settings.device_dir}/pediatric_emotion_{self.token}_benchmark_model"
        try:
            self.push(binary, remote)
            self.adb("shell", "chmod", "755", shlex.quote(remote), what="adb shell chmod")
            yield remote
        finally:
            self.remove(remote)

    def benchmark(self, remote_binary: str, content: bytes, label: str) -> dict[str, Any]:
        """Push one model, run benchmark_model on it, remove it: the run's record (command, exit
        status, raw output, parsed output, figures). AdbError or BenchmarkOutputError (raw output
        kept)."""
        remote = f"{self.settings.device_dir}/pediatric_emotion_{self.token}_{_safe_name(label)}"
        command = [remote_binary, *self.settings.benchmark.flags(remote)]
        with tempfile.TemporaryDirectory() as folder:
            local = Path(folder) / Path(remote).name
            local.write_bytes(content)
            try:
                self.push(local, remote)
                started = time.perf_counter()
                returncode, output = self.run_binary(command)
                seconds = time.perf_counter() - started
            finally:
                self.remove(remote)
        return run_record(
            [self.settings.adb, "-s", self.serial, "shell", *command],
            returncode,
            output,
            seconds,
            label=label,
            delegate=self.settings.benchmark.delegate,
        )

    def run_binary(self, command: list[str]) -> tuple[int, str]:
        """Exit status and output of benchmark_model on the device; AdbError when the shell
        cannot execute it, the device drops, or it runs past the benchmark time-out."""
        args = [self.settings.adb, "-s", self.serial, "shell", *map(shlex.quote, command)]
        timeout = self.settings.timeouts["benchmark"]
        try:
            returncode, output = run_command(args, timeout=timeout, what="benchmark_model")
        except CommandTimeoutError as error:
            raise AdbError(
                "time-out", f"benchmark_model on {self.serial}: {error}", error.output
            ) from None
        cause = _cause(output)
        if cause is not None:
            raise AdbError(cause, f"benchmark_model on {self.serial}: {_last(output)}", output)
        if returncode in (126, 127) or _NOT_EXECUTABLE.search(output.split("\n", 1)[0]):
            raise AdbError(
                "not executable",
                f"the device's shell cannot run {command[0]}: {_last(output)} (a benchmark_model "
                "build for another ABI, or a device folder mounted noexec)",
                output,
            )
        return returncode, output


def _last(output: str) -> str:
    return (output.strip().splitlines() or ["(no output)"])[-1]


def _cause(output: str) -> str | None:
    return next((cause for pattern, cause in _OUTPUT_CAUSES if pattern.search(output)), None)


def _adb(args: list[str], settings: PhoneSettings, timeout: str, what: str) -> str:
    try:
        returncode, output = run_command(args, timeout=settings.timeouts[timeout], what=what)
    except FileNotFoundError:
        raise AdbError(
            "adb not found",
            f"{args[0]!r} is not an executable (install Android platform-tools, or set "
            "device_profiling.phone.adb to its path)",
        ) from None
    except CommandTimeoutError as error:
        raise AdbError("time-out", str(error), error.output) from None
    cause = _cause(output)
    if cause is not None:
        raise AdbError(cause, f"{what}: {_last(output)}", output)
    if returncode != 0:
        message = f"{what} exited with {returncode}: {_last(output)}"
        raise AdbError("command failed", message, output)
    return output

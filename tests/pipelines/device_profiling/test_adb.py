"""The phone runner against the stand-in adb: device listing and selection, device properties,
push / chmod / benchmark_model / rm with the recorded outputs, and every failure named by its
cause with nothing left on the device afterwards."""

import pytest

from pediatric_emotion.pipelines.device_profiling.adb import (
    AdbError,
    Phone,
    PhoneSettings,
    binary_abi,
    parse_devices,
    parse_getprop,
    select_device,
)
from pediatric_emotion.pipelines.device_profiling.benchmark_output import BenchmarkOutputError
from tests.pipelines.device_profiling.conftest import SERIAL, elf_stub, phone_profiling

CONTENT = b"\x1c\x00\x00\x00TFL3" + bytes(64)  # the phone never parses the model here


def _settings(default_profiling, fake_adb, **changes):
    return PhoneSettings.from_config(phone_profiling(default_profiling, fake_adb.binary, **changes))


def test_device_listings_as_adb_prints_them():
    listing = (
        "* daemon not running; starting now at tcp:5037\n"
        "* daemon started successfully\n"
        "List of devices attached\n"
        "ZY2242HJ7Q\tdevice\n"
        "emulator-5554\toffline\n"
        "R58M41\tunauthorized\n"
        "0123456789ABCDEF\tno permissions (user in plugdev group; are your udev rules wrong?); "
        "see [http://developer.android.com/tools/device.html]\n"
        "9B061FFAZ002GK         device usb:1-1 product:ali model:moto_g_6_ device:ali "
        "transport_id:3\n\n"
    )
    assert parse_devices(listing) == [
        ("ZY2242HJ7Q", "device"),
        ("emulator-5554", "offline"),
        ("R58M41", "unauthorized"),
        ("0123456789ABCDEF", "no permissions"),
        ("9B061FFAZ002GK", "device"),
    ]
    assert parse_devices("List of devices attached\n\n") == []


def test_device_selection_and_its_errors():
    assert select_device([("A", "device")], None) == "A"
    assert select_device([("A", "device"), ("B", "device")], "B") == "B"
    with pytest.raises(AdbError, match="several devices: 2 devices attached") as caught:
        select_device([("A", "device"), ("B", "device")], None)
    assert "device_profiling.phone.serial" in str(caught.value)
    with pytest.raises(AdbError, match="no device: adb lists no attached device"):
        select_device([], None)
    with pytest.raises(AdbError, match=r"no device: device 'C' is not attached \(attached: A"):
        select_device([("A", "device")], "C")
    for state, cause in (("unauthorized", "unauthorized"), ("offline", "offline")):
        with pytest.raises(AdbError) as caught:
            select_device([("A", state)], None)
        assert caught.value.cause == cause
    with pytest.raises(AdbError, match="udev rules") as caught:
        select_device([("A", "no permissions")], "A")


def test_getprop_and_binary_abi(tmp_path):
    props = parse_getprop("[ro.product.model]: [moto g(6)]\n[ro.build.version.sdk]: [28]\n")
    assert props == {"ro.product.model": "moto g(6)", "ro.build.version.sdk": "28"}
    for abi in ("armeabi-v7a", "arm64-v8a", "x86_64"):
        (tmp_path / abi).write_bytes(elf_stub(abi))
        assert binary_abi(tmp_path / abi) == abi
    (tmp_path / "script").write_text("#!/bin/sh\n")
    assert binary_abi(tmp_path / "script") is None


def test_a_whole_run_pushes_runs_and_removes_everything(default_profiling, fake_adb):
    phone = Phone.connect(_settings(default_profiling, fake_adb))
    assert phone.serial == SERIAL
    assert phone.describe() == (
        "moto g(6)",
        f"motorola moto g(6), msm8953, armeabi-v7a, Android 9 (SDK 28), serial {SERIAL}",
    )
    with phone.installed_binary() as binary:
        assert binary.startswith("/data/local/tmp/pediatric_emotion_")
        run = phone.benchmark(binary, CONTENT, "tiny.demo.baseline.float32.tflite")
    assert run["returncode"] == 0 and run["figures"]["avg_ms"] == pytest.approx(90.9542)
    assert "Inference timings in us" in run["output"]
    calls = fake_adb.calls()
    assert calls[0] == ["devices"]
    assert all(call[:2] == ["-s", SERIAL] for call in calls[1:])
    pushes = [call for call in calls if call[2:3] == ["push"]]
    assert [p[3] for p in pushes][0] == str(fake_adb.binary)
    assert pushes[1][4].endswith("tiny.demo.baseline.float32.tflite")
    (bench,) = fake_adb.shell_calls("_benchmark_model")
    assert f"--graph={pushes[1][4]}" in bench
    for flag in ("--num_threads=4", "--warmup_runs=5", "--num_runs=30", "--min_secs=0"):
        assert flag in bench
    removed = [call[-1] for call in fake_adb.calls() if call[3:5] == ["rm", "-f"]]
    assert removed == [pushes[1][4], pushes[0][4]]  # the model right after its run, then the binary
    assert fake_adb.left_on_device() == ["data", "data/local", "data/local/tmp"]


@pytest.mark.parametrize(
    ("scenario", "cause", "message"),
    [
        ({"exec_error": "{binary}: not executable: 64-bit ELF file"}, "not executable", "64-bit"),
        (
            {
                "push_error_match": ".tflite",
                "push_error": "adb: error: failed to copy '{local}' to "
                "'{remote}': remote couldn't create file: Permission denied",
            },
            "push failed",
            "couldn't create file",
        ),
        ({"sleep_s": 5}, "time-out", "did not finish within 0.5 s"),
    ],
)
def test_failures_name_their_cause_and_clean_up(
    default_profiling, fake_adb, scenario, cause, message
):
    fake_adb.set(**scenario)
    settings = _settings(default_profiling, fake_adb, timeouts_s={"benchmark": 0.5})
    phone = Phone.connect(settings)
    with pytest.raises(AdbError) as caught, phone.installed_binary() as binary:
        phone.benchmark(binary, CONTENT, "tiny.demo.baseline.int8.tflite")
    assert caught.value.cause == cause and message in str(caught.value)
    assert fake_adb.left_on_device() == ["data", "data/local", "data/local/tmp"]
    assert len([c for c in fake_adb.calls() if c[3:5] == ["rm", "-f"]]) == 2


def test_a_failed_benchmark_keeps_the_raw_output_and_cleans_up(default_profiling, fake_adb):
    fake_adb.set(benchmark=[{"output": "phone_failed_op_version.txt", "rc": 1}])
    phone = Phone.connect(_settings(default_profiling, fake_adb))
    with pytest.raises(BenchmarkOutputError, match="FULLY_CONNECTED") as caught:
        with phone.installed_binary() as binary:
            phone.benchmark(binary, CONTENT, "tiny.demo.baseline.int8.tflite")
    assert "Registration failed." in caught.value.raw
    assert fake_adb.left_on_device() == ["data", "data/local", "data/local/tmp"]


@pytest.mark.parametrize(
    ("scenario", "cause"),
    [
        ({"devices": "List of devices attached\n\n"}, "no device"),
        ({"devices": f"List of devices attached\n{SERIAL}\tunauthorized\n\n"}, "unauthorized"),
        ({"devices": f"List of devices attached\n{SERIAL}\toffline\n\n"}, "offline"),
        (
            {"devices": f"List of devices attached\n{SERIAL}\tdevice\nX1\tdevice\n\n"},
            "several devices",
        ),
        ({"device_error": "error: device offline"}, "offline"),
        (
            {
                "device_error": "adb: device unauthorized.\n"
                "This adb server's $ADB_VENDOR_KEYS is not set"
            },
            "unauthorized",
        ),
    ],
)
def test_device_problems_are_named(default_profiling, fake_adb, scenario, cause):
    fake_adb.set(**scenario)
    with pytest.raises(AdbError) as caught:
        Phone.connect(_settings(default_profiling, fake_adb)).properties()
    assert caught.value.cause == cause


def test_missing_adb_and_a_binary_for_another_abi(default_profiling, fake_adb, tmp_path):
    with pytest.raises(AdbError, match="adb not found"):
        Phone.connect(_settings(default_profiling, fake_adb, phone={"adb": str(tmp_path / "no")}))
    fake_adb.binary.write_bytes(elf_stub("arm64-v8a"))  # the Moto G6 runs 32-bit Android
    phone = Phone.connect(_settings(default_profiling, fake_adb))
    with pytest.raises(AdbError, match="built for arm64-v8a; the device runs armeabi-v7a"):
        with phone.installed_binary():
            pass
    assert not [call for call in fake_adb.calls() if call[2:3] == ["push"]]


def test_settings_are_checked(default_profiling, fake_adb):
    with pytest.raises(ValueError, match="delegate: 'hexagon' is not one of"):
        _settings(default_profiling, fake_adb, phone={"delegate": "hexagon"})
    with pytest.raises(ValueError, match="device_dir must be absolute"):
        _settings(default_profiling, fake_adb, phone={"device_dir": "tmp"})
    with pytest.raises(ValueError, match="threads and runs must be >= 1"):
        _settings(default_profiling, fake_adb, runs=0)
    gpu = _settings(default_profiling, fake_adb, phone={"delegate": "gpu"}, op_profiling=True)
    assert {"--use_gpu=true", "--enable_op_profiling=true"} <= set(gpu.benchmark.flags("m"))

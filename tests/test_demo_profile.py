"""The quick demo: `demo.quick` merged over the parameters unless `demo.full` is true, runtime
parameters over both; conf/base's cuts as the default run sees them; conf/paper without them."""

from pathlib import Path

import pytest
import yaml

from pediatric_emotion.config import ProjectConfigLoader, with_demo_profile

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BASE = {
    "training": {"epochs": 8, "batch_size": 32},
    "profiling": {"runs": 30, "warmup": 5},
    "demo": {"full": False, "quick": {"profiling": {"runs": 10}}},
}


def test_quick_values_are_merged_key_by_key():
    params = with_demo_profile(BASE)
    assert params["profiling"] == {"runs": 10, "warmup": 5}
    assert params["training"] == BASE["training"]


@pytest.mark.parametrize("runtime", [{"demo": {"full": True}}, {"demo": {"full": 1}}])
def test_demo_full_switches_the_cuts_off(runtime):
    params = with_demo_profile(BASE, runtime)
    assert params["profiling"] == {"runs": 30, "warmup": 5}


def test_runtime_params_override_quick_values():
    params = with_demo_profile(BASE, {"profiling": {"runs": 3}})
    assert params["profiling"] == {"runs": 3, "warmup": 5}
    quick_changed = with_demo_profile(BASE, {"demo": {"quick": {"profiling": {"runs": 7}}}})
    assert quick_changed["profiling"]["runs"] == 7


def test_no_demo_section_or_no_quick_values_change_nothing():
    plain = {"training": {"epochs": 8}}
    assert with_demo_profile(plain) == plain
    assert with_demo_profile({**plain, "demo": {"full": False}})["training"] == {"epochs": 8}


def test_quick_values_cut_only_what_the_parameters_configure():
    parameters = {
        "architectures": {"tiny": {"application": "MobileNetV2", "application_kwargs": {}}},
        "training": {"epochs": 8},
        "demo": {
            "quick": {
                "architectures": {
                    "tiny": {"application_kwargs": {"alpha": 0.5}},
                    "nasnet_mobile": {"application_kwargs": {"num_blocks": 1}},
                },
                "training": {"epochs": 2, "new_setting": 1},
                "device_profiling": {"runs": 10},
            }
        },
    }
    merged = with_demo_profile(parameters)
    assert list(merged["architectures"]) == ["tiny"]  # no half-configured architecture
    assert merged["architectures"]["tiny"]["application_kwargs"] == {"alpha": 0.5}
    assert merged["training"] == {"epochs": 2}
    assert "device_profiling" not in merged


def test_quick_must_be_a_mapping():
    with pytest.raises(ValueError, match="demo.quick must be a mapping"):
        with_demo_profile({"demo": {"quick": [1, 2]}})


def test_the_default_run_has_the_quick_cuts_and_demo_full_has_none(tmp_path):
    conf = tmp_path / "conf"
    (conf / "local").mkdir(parents=True)
    for name in ("base", "paper"):
        (conf / name).symlink_to(PROJECT_ROOT / "conf" / name)

    def load(env=None, runtime_params=None):
        return ProjectConfigLoader(
            conf_source=str(conf), base_env="base",
            default_run_env="local" if env is None else env, runtime_params=runtime_params,
        )["parameters"]  # fmt: skip

    base = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_optimization.yml").read_text())
    quick = load()
    full = load(runtime_params={"demo": {"full": True}})
    assert quick["optimization"]["fine_tuning"]["run_eagerly"] is True
    assert full["optimization"]["fine_tuning"] == base["optimization"]["fine_tuning"]
    assert quick["optimization"]["techniques"] == full["optimization"]["techniques"]
    assert quick["device_profiling"]["runs"] < full["device_profiling"]["runs"]
    # the grid's shape does not depend on the switch: the same cells, the same applications
    # (smaller members of their families in the quick demo), variants and classes
    for key in ("variants", "emotions"):
        assert quick[key] == full[key]
    assert list(quick["architectures"]) == list(full["architectures"])
    for name, member in full["architectures"].items():
        assert quick["architectures"][name]["application"] == member["application"]
    assert quick["architectures"]["nasnet_mobile"]["application_kwargs"]["num_blocks"] == 1
    assert full["architectures"]["nasnet_mobile"]["application_kwargs"] == {}
    assert quick["demo_data"]["scale"] < full["demo_data"]["scale"]
    paper = load(env="paper")
    assert paper["demo"] == {"full": True}
    assert paper["optimization"]["fine_tuning"].get("run_eagerly", False) is False
    assert paper["device_profiling"]["runs"] == full["device_profiling"]["runs"]


class _Context:
    def __init__(self, params):
        self.params = params


def test_the_run_says_which_cuts_are_in_force(caplog):
    from pediatric_emotion.hooks import QuickDemoNoticeHook
    from pediatric_emotion.settings import HOOKS

    assert any(isinstance(hook, QuickDemoNoticeHook) for hook in HOOKS)
    with caplog.at_level("INFO", logger="pediatric_emotion.hooks"):
        QuickDemoNoticeHook().after_context_created(_Context(with_demo_profile(BASE)))
    assert "Quick demo: profiling cut" in caplog.text and "demo.full=true" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="pediatric_emotion.hooks"):
        full = with_demo_profile(BASE, {"demo": {"full": True}})
        QuickDemoNoticeHook().after_context_created(_Context(full))
    assert "Quick demo" not in caplog.text

import pytest
import yaml

from pediatric_emotion.config import ProjectConfigLoader


@pytest.fixture
def conf(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "local").mkdir()
    (tmp_path / "base" / "parameters.yml").write_text(
        yaml.safe_dump(
            {"demo_data": {"seed": 1, "scale": 1.0, "sources": {"a": 1}}, "sources": {"x": 1}}
        )
    )
    return tmp_path


def _loader(conf, runtime_params=None):
    return ProjectConfigLoader(
        conf_source=str(conf), base_env="base", default_run_env="local",
        runtime_params=runtime_params,
    )  # fmt: skip


def test_runtime_params_override_only_what_they_name_with_local_parameters(conf):
    (conf / "local" / "parameters.yml").write_text(yaml.safe_dump({"sources": {"y": 2}}))
    params = _loader(conf, {"demo_data": {"scale": 0.2}})["parameters"]
    assert params["demo_data"] == {"seed": 1, "scale": 0.2, "sources": {"a": 1}}
    assert params["sources"] == {"y": 2}  # conf/local still replaces whole top-level keys


def test_runtime_params_without_local_parameters(conf):
    params = _loader(conf, {"demo_data": {"scale": 3}})["parameters"]
    assert params["demo_data"]["scale"] == 3 and params["demo_data"]["seed"] == 1


def test_runtime_params_over_a_local_override_of_the_same_key(conf):
    (conf / "local" / "parameters.yml").write_text(
        yaml.safe_dump({"demo_data": {"seed": 7, "scale": 1.0}})
    )
    params = _loader(conf, {"demo_data": {"scale": 0.5}})["parameters"]
    assert params["demo_data"] == {"seed": 7, "scale": 0.5}


def test_runtime_params_resolver_still_works(conf):
    (conf / "base" / "parameters.yml").write_text("size: ${runtime_params:size, 64}\n")
    assert _loader(conf, {"size": 32})["parameters"]["size"] == 32
    assert _loader(conf)["parameters"]["size"] == 64


def test_a_duplicate_key_names_the_file_and_the_line(conf):
    local = conf / "local" / "parameters_label_harmonization.yml"
    local.write_text("sources:\n  kdef:\n    format: kdef\n  kdef:\n    format: jaffe\n")
    with pytest.raises(ValueError) as info:
        _loader(conf)["parameters"]
    message = str(info.value)
    assert f'in "{local}", line 4, column 3' in message
    assert "found duplicate key kdef" in message and "<file>" not in message

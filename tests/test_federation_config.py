"""The run configuration: read once, validated, round-trips."""

from __future__ import annotations

from typing import Any

import pytest

from federation.app_config import RUN_CONFIG_KEYS, FederationConfig, FederationConfigError


def test_defaults_and_round_trip() -> None:
    default = FederationConfig()
    assert FederationConfig.from_run_config({}) == default
    run_config = default.to_run_config()
    assert set(run_config) == set(RUN_CONFIG_KEYS)
    assert FederationConfig.from_run_config(run_config) == default


def test_nested_keys() -> None:
    cfg = FederationConfig.from_run_config(
        {"model-hidden": 8, "adapter-buckets": 32, "dp-delta": 1e-6, "dp-sample-level": True}
    )
    assert cfg.model.hidden == 8 and cfg.model.adapter_buckets == 32
    assert cfg.privacy.delta == 1e-6 and cfg.privacy.sample_level
    assert cfg.with_overrides({"strategy": "fedadam"}).strategy == "fedadam"


def test_ints_accepted_for_floats() -> None:
    assert FederationConfig.from_run_config({"clip-bound": 2}).clip_bound == 2.0


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"rounds": 3}, "unknown run-config keys"),
        ({"strategy": "fedsgd"}, "strategy must be one of"),
        ({"robust-aggregation": "median"}, "robust-aggregation"),
        ({"num-server-rounds": 0}, "num-server-rounds"),
        ({"num-server-rounds": "3"}, "must be a int"),
        ({"local-steps": True}, "must be a int"),
        ({"fraction-train": 0.0}, "fraction-train"),
        ({"trim-fraction": 0.5}, "trim-fraction"),
        ({"clip-bound": -1.0}, "clip-bound"),
        ({"resume": True}, "checkpoint-dir"),
        ({"dp-delta": 1.0}, "dp-delta"),
        ({"model-hidden": 0}, "hidden"),
        ({"model-context": "gru"}, "context"),
    ],
)
def test_bad_values_are_refused(values: dict[str, Any], match: str) -> None:
    with pytest.raises(FederationConfigError, match=match):
        FederationConfig.from_run_config(values)


def test_frozen() -> None:
    cfg = FederationConfig()
    with pytest.raises(AttributeError):
        cfg.seed = 3  # type: ignore[misc]


def test_pyproject_app_config_is_complete_and_valid() -> None:
    import tomllib
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    app = tomllib.loads(pyproject.read_text()).get("tool", {}).get("flwr", {}).get("app")
    if app is None:
        pytest.skip("pyproject.toml has no [tool.flwr.app] section yet")
    assert app["components"] == {
        "serverapp": "federation.server.server_app:app",
        "clientapp": "federation.client.client_app:app",
    }
    # `flwr run --run-config` can only override keys the section lists: list them all.
    assert set(app["config"]) == set(RUN_CONFIG_KEYS)
    FederationConfig.from_run_config(app["config"])

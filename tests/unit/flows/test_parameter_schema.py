"""The deployment's parameter schema (what Prefect builds from `encode_video`'s signature) leaves presets
optional, keeps the typed form, and says what a missing preset list means."""

from __future__ import annotations

from prefect.utilities.callables import parameter_schema

from vodflow.flows.pipeline import encode_video


def test_the_schema_builds_and_presets_are_optional():
    schema = parameter_schema(encode_video).model_dump()
    assert schema["required"] == ["spec"]
    run_spec = schema["definitions"]["RunSpec"]
    assert "presets" not in run_spec.get("required", [])
    presets = run_spec["properties"]["presets"]
    assert presets["default"] is None and "HLS ladder 240-1080" in presets["description"]
    array = next(option for option in presets["anyOf"] if option.get("type") == "array")
    assert array["items"] == {"$ref": "#/definitions/Preset"} and array["minItems"] == 1
    assert array["maxItems"] == 16, "the form shows the bound the API and the flow apply"
    preset = schema["definitions"]["Preset"]
    assert preset["properties"]["format"]["enum"] == ["hls", "mp4", "cmaf"]

"""Pipeline configuration: YAML validated into frozen pydantic models (see `schema`), read by `loader`."""

from ctpipeline.config.schema import PipelineConfig, json_schema, load_config, parse_config

__all__ = ["PipelineConfig", "json_schema", "load_config", "parse_config"]

"""The run configuration: typed sections with defaults and descriptions, YAML presets and ``--set`` overrides.

Three modules, each importing only the ones before it: :mod:`~snnlab.config.messages` (the one-line
:class:`ConfigError` and how values are quoted in it), :mod:`~snnlab.config.schema` (the pydantic models
and their checks) and :mod:`~snnlab.config.loading` (YAML with line numbers and bounds, ``--set``,
presets). Import from here: ``from snnlab.config import load_config``. Beside them,
:mod:`~snnlab.config.diff` reads configs as flat dotted keys and finds where two differ.

Neither importing this package nor validating a config imports torch: the choices come from
:mod:`snnlab.catalog`.
"""

from snnlab.config.loading import (
    MAX_FILE_BYTES,
    PRESETS_DIR,
    apply_overrides,
    config_from_dict,
    dump_yaml,
    find_preset,
    list_presets,
    load_config,
)
from snnlab.config.messages import MAX_DEPTH, MAX_MESSAGE, MAX_VALUES, ConfigError, did_you_mean
from snnlab.config.schema import (
    LAYERS,
    MAX_RUN_NAME,
    AvgPoolLayer,
    BatchNormLayer,
    Config,
    Conv2dLayer,
    DataConfig,
    DropoutLayer,
    FlattenLayer,
    Layer,
    LayerNeuron,
    LinearLayer,
    MaxPoolLayer,
    ModelConfig,
    NeuronConfig,
    ProbeConfig,
    RunConfig,
    SyntheticConfig,
    TrainConfig,
    schema_rows,
)

__all__ = [
    "LAYERS",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_MESSAGE",
    "MAX_RUN_NAME",
    "MAX_VALUES",
    "PRESETS_DIR",
    "AvgPoolLayer",
    "BatchNormLayer",
    "Config",
    "ConfigError",
    "Conv2dLayer",
    "DataConfig",
    "DropoutLayer",
    "FlattenLayer",
    "Layer",
    "LayerNeuron",
    "LinearLayer",
    "MaxPoolLayer",
    "ModelConfig",
    "NeuronConfig",
    "ProbeConfig",
    "RunConfig",
    "SyntheticConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "did_you_mean",
    "dump_yaml",
    "find_preset",
    "list_presets",
    "load_config",
    "schema_rows",
]

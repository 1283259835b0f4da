"""Configuration: TOML in, frozen validated dataclasses out (the bottom layer of loopdyn).

Every error is a :class:`ConfigError` whose message is one line naming the file, the key, the bad value
and what is allowed. Experiments declare their own table with :func:`register_experiment`.
"""

from ._ensemble import MEMORY_FRACTION as MEMORY_FRACTION
from ._ensemble import Resources as Resources
from ._ensemble import RunGroup as RunGroup
from ._ensemble import checkpoint_epochs as checkpoint_epochs
from ._ensemble import estimate_resources as estimate_resources
from ._ensemble import groups as groups
from ._ensemble import n_runs as n_runs
from ._ensemble import runs as runs
from ._load import ExperimentTable as ExperimentTable
from ._load import check_single_phase_sources as check_single_phase_sources
from ._load import experiment_names as experiment_names
from ._load import from_dict as from_dict
from ._load import from_toml_text as from_toml_text
from ._load import load as load
from ._load import parse_seeds as parse_seeds
from ._load import plant_sizes as plant_sizes
from ._load import register_experiment as register_experiment
from ._load import replace as replace
from ._load import shipped as shipped
from ._load import to_dict as to_dict
from ._load import with_values as with_values
from ._schema import HYPERPARAMETERS as HYPERPARAMETERS
from ._schema import PARAMETER_NAMES as PARAMETER_NAMES
from ._schema import PLANT_KINDS as PLANT_KINDS
from ._schema import REPRESENTATIONS as REPRESENTATIONS
from ._schema import SECTIONS as SECTIONS
from ._schema import TRAINING_MODES as TRAINING_MODES
from ._schema import AgentConfig as AgentConfig
from ._schema import Config as Config
from ..errors import ConfigError as ConfigError
from ._schema import PlantConfig as PlantConfig
from ._schema import RecordConfig as RecordConfig
from ._schema import TaskConfig as TaskConfig
from ._schema import TrainConfig as TrainConfig

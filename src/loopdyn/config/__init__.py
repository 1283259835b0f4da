"""Configuration: TOML in, frozen validated dataclasses out (the bottom layer of loopdyn).

Every error is a :class:`ConfigError` whose message is one line naming the file, the key, the bad value
and what is allowed. The model's parts (plant, task, agent, loss terms, experiment) are found by their
`kind` through the families of :mod:`loopdyn.config._parts`; this layer knows none of them by name.
"""

from ..errors import ConfigError as ConfigError
from ._ensemble import MEMORY_FRACTION as MEMORY_FRACTION
from ._ensemble import Resources as Resources
from ._ensemble import RunGroup as RunGroup
from ._ensemble import checkpoint_epochs as checkpoint_epochs
from ._ensemble import estimate_resources as estimate_resources
from ._ensemble import groups as groups
from ._ensemble import n_runs as n_runs
from ._ensemble import runs as runs
from ._load import check_single_phase_sources as check_single_phase_sources
from ._load import experiment_names as experiment_names
from ._load import experiment_of as experiment_of
from ._load import experiment_table as experiment_table
from ._load import from_dict as from_dict
from ._load import from_toml_text as from_toml_text
from ._load import load as load
from ._load import parse_seeds as parse_seeds
from ._load import replace as replace
from ._load import shipped as shipped
from ._load import table_defaults as table_defaults
from ._load import table_type as table_type
from ._load import to_dict as to_dict
from ._load import with_parts as with_parts
from ._load import with_values as with_values
from ._parts import FAMILIES as FAMILIES
from ._parts import Family as Family
from ._parts import InvalidParameter as InvalidParameter
from ._parts import Part as Part
from ._parts import build_part as build_part
from ._parts import declare_family as declare_family
from ._parts import each as each
from ._parts import family as family
from ._parts import param as param
from ._parts import parameters as parameters
from ._parts import part_to_dict as part_to_dict
from ._schema import HYPER_DEFAULTS as HYPER_DEFAULTS
from ._schema import HYPERPARAMETERS as HYPERPARAMETERS
from ._schema import NON_NEGATIVE as NON_NEGATIVE
from ._schema import PART_SECTIONS as PART_SECTIONS
from ._schema import POSITIVE as POSITIVE
from ._schema import SECTIONS as SECTIONS
from ._schema import TRAINING_MODES as TRAINING_MODES
from ._schema import UNIT_INTERVAL as UNIT_INTERVAL
from ._schema import Config as Config
from ._schema import RecordConfig as RecordConfig
from ._schema import ScheduleConfig as ScheduleConfig
from ._schema import TrainConfig as TrainConfig
from ._keys import Key as Key
from ._keys import Table as Table
from ._keys import config_tables as config_tables
from ._keys import find_tables as find_tables
from ._parts import did_you_mean as did_you_mean

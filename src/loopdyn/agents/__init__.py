"""RNN controllers: discrete and leaky, linear/tanh/relu, full or low rank (spec §2)."""

from ._params import AgentParams as AgentParams
from ._params import combine as combine
from ._params import partition as partition
from ._rnn import ACTIVATIONS as ACTIVATIONS
from ._rnn import AgentSpec as AgentSpec
from ._rnn import Core as Core
from ._rnn import connectivity as connectivity
from ._rnn import effective_core as effective_core
from ._rnn import gain_core as gain_core
from ._rnn import init_params as init_params
from ._rnn import make_core as make_core
from ._rnn import overlap_core as overlap_core
from ._rnn import reduced_basis as reduced_basis
from ._rnn import spec_from_config as spec_from_config

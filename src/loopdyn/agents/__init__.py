"""RNN controllers: discrete and leaky, linear/tanh/relu, full or low rank (paper-spec §2)."""

from ._rnn import AgentSpec as AgentSpec
from ._rnn import init_params as init_params
from ._rnn import make_core as make_core
from ._rnn import connectivity as connectivity
from ._rnn import split_trainable as split_trainable
from ._rnn import spec_from_config as spec_from_config

"""RNN controllers: discrete and leaky, linear/tanh/relu, full or low rank (spec §2); linear low-rank agents
in their overlaps (the Gram matrix and its exact gradient step, spec §7)."""

from ._core import Core as Core
from ._core import effective_core as effective_core
from ._core import gain_core as gain_core
from ._core import overlap_core as overlap_core
from ._overlaps import GRAM_BLOCKS as GRAM_BLOCKS
from ._overlaps import RANK1_INDEX as RANK1_INDEX
from ._overlaps import GramLayout as GramLayout
from ._overlaps import balance as balance
from ._overlaps import conserved_quantities as conserved_quantities
from ._overlaps import gram_coefficients as gram_coefficients
from ._overlaps import gram_core as gram_core
from ._overlaps import gram_gradient_sq_norm as gram_gradient_sq_norm
from ._overlaps import gram_layout as gram_layout
from ._overlaps import gram_matrix as gram_matrix
from ._overlaps import gram_readout as gram_readout
from ._overlaps import gram_step as gram_step
from ._overlaps import gram_velocity as gram_velocity
from ._overlaps import represent as represent
from ._gru import GRU as GRU
from ._params import AgentParams as AgentParams
from ._part import AGENTS as AGENTS
from ._part import PARAMETER_NAMES as PARAMETER_NAMES
from ._part import REPRESENTATIONS as REPRESENTATIONS
from ._part import RNN as RNN
from ._part import Agent as Agent
from ._params import combine as combine
from ._params import partition as partition
from ._rnn import ACTIVATIONS as ACTIVATIONS
from ._rnn import AgentSpec as AgentSpec
from ._rnn import connectivity as connectivity
from ._rnn import init_params as init_params
from ._rnn import make_core as make_core
from ._rnn import reduced_basis as reduced_basis
from ._rnn import spec_from_config as spec_from_config
from ._params import EXTRA as EXTRA

r"""The agent interface and the RNN controller as a part (`[agent] kind = "rnn"`, spec §2).

An :class:`Agent` is a part whose fields are the controller's settings. The trainer builds the
controller's static description from it (:func:`loopdyn.agents.spec_from_config`); an agent declares
whether it is linear (`linear`: the joint matrix P, superposition and the batch compression apply only
then) and how large it is (:meth:`Agent.footprint`, for the memory and disk estimates).
"""

from __future__ import annotations

import abc
import math

from ..config import NON_NEGATIVE, POSITIVE, UNIT_INTERVAL, InvalidParameter, Part, declare_family, param

REPRESENTATIONS = ("vectors", "overlaps")
PARAMETER_NAMES = ("m", "W", "U", "V", "z")


class Agent(Part):
    """A controller: its settings are its fields."""

    @property
    @abc.abstractmethod
    def linear(self) -> bool:
        """Whether the controller's update is linear in its state and input."""

    @abc.abstractmethod
    def spec(self, n_in: int, n_out: int):
        """The static description the trainer compiles (:class:`loopdyn.agents.AgentSpec`) for `n_in` inputs and
        `n_out` outputs; an agent with its own initialisation or core puts itself in its `part`."""

    def extra_parameters(self, spec) -> dict[str, tuple[int, str]]:
        """Parameters beyond the RNN's `m, z, W | U, V` (`AgentParams.extra`): name -> `(width, dim)` of an
        `(N, width)` array whose second axis is named `dim` in the store (e.g. `"neuron_in"`, `"in"`, `"one"`)."""
        return {}

    @abc.abstractmethod
    def footprint(self, n_in: int, n_out: int) -> tuple[int, int, int]:
        """`(hidden, parameters, trained)`: the size of the state the rollout steps, of all parameters, and of
        the trained ones (numbers of floats), for `n_in` inputs and `n_out` outputs."""

    @property
    def dense_checkpoints(self) -> bool:
        """Whether `record.checkpoint = "auto"` stores the parameters every epoch (small agents), else log-spaced."""
        return True


class RNN(Agent):
    r"""RNN controller $h' = (1-\alpha) h + \alpha \phi(W h + m y)$, $u = z^\top h$, $W = U V^\top + g J$ (spec §2)."""

    N: int = param(100, doc="number of hidden units", check=POSITIVE)
    rank: int = param(1, doc="rank of W = U V^T + g J; 0 = full rank", check=NON_NEGATIVE)
    activation: str = param("linear", doc="nonlinearity phi", choices=("linear", "tanh", "relu"))
    alpha: float = param(1.0, doc="leak dt/tau; 1 = discrete RNN", check=UNIT_INTERVAL)
    g: float = param(0.0, doc="gain of the random connectivity J", check=NON_NEGATIVE)
    init: str = param("lowrank", doc="initialisation scheme (lowrank: spec §2.2, rnn: spec §2.1, uniform: spec §2.1 "
                                     "tracking, unit: unit-norm vectors, spec §7.1)",
                      choices=("lowrank", "rnn", "uniform", "unit"))
    over: float = param(math.nan, doc="set sigma_zm = z.m exactly at init (nan = off)", allow_nan=True)
    trainable: tuple[str, ...] = param(("z", "U", "V"), doc="trained parameters, a non-empty subset of m, W, U, V, z")
    representation: str = param("vectors", doc="train the N-dimensional vectors ('vectors') or, for a linear low-rank "
                                               "agent with g = 0 and SGD, exactly the Gram matrix of m, z, U, V "
                                               "('overlaps', spec §7; cost independent of N)", choices=REPRESENTATIONS)

    @property
    def linear(self) -> bool:
        return self.activation == "linear"

    @property
    def custom(self) -> bool:
        """Whether a subclass initialises or steps the network its own way (then the RNN-specific shortcuts,
        the reduced span{m, U} rollout and the closed-form joint matrix, are not used: loopdyn takes the
        joint matrix of the subclass's core by automatic differentiation)."""
        return type(self).initial_parameters is not RNN.initial_parameters or type(self).core is not RNN.core

    def spec(self, n_in: int, n_out: int):
        from ._rnn import AgentSpec

        return AgentSpec(self.N, self.rank, self.activation, self.alpha, self.init, n_in, n_out, tuple(self.trainable),
                         self.rank > 0 and self.g > 0, self.representation, self if self.custom else None)

    def initial_parameters(self, spec, key, *, g=0.0, over=math.nan, dtype=None):
        """The initial `AgentParams` (fields `m, z` and `W` or `U, V`); override to initialise otherwise."""
        from ._rnn import rnn_init_params

        return rnn_init_params(spec, key, g=g, over=over, dtype=dtype)

    def core(self, spec, params, g=0.0):
        """The :class:`loopdyn.agents.Core` that steps the network; override to step it otherwise (e.g. with a
        sign-constrained W). Written in `jax.numpy`; `params` may carry leading batch axes only through `vmap`."""
        from ._rnn import rnn_core

        return rnn_core(spec, params, g)

    @property
    def dense_checkpoints(self) -> bool:
        return self.N <= 100 or self.representation == "overlaps"

    def footprint(self, n_in: int, n_out: int) -> tuple[int, int, int]:
        N, r = self.N, self.rank
        shapes = {"m": N * n_in, "z": N * n_out, "W": N * N, "U": N * r, "V": N * r}
        every = sum(shapes[p] for p in (("m", "z", "U", "V") if r else ("m", "z", "W"))) + (N * N if r and self.g else 0)
        trained = sum(shapes[p] for p in self.trainable)
        if self.representation == "overlaps":  # one Gram matrix of m, z, U, V
            every = trained = (n_in + n_out + 2 * r) ** 2
        reduced = self.linear and r and not self.g and n_in + r < N
        return (n_in + r) if reduced else N, every, trained

    def check(self, cfg) -> None:
        if self.rank > self.N:
            raise InvalidParameter("agent.rank", f"= {self.rank} must be <= agent.N = {self.N} (0 means full rank)")
        if not self.trainable:
            raise InvalidParameter("agent.trainable", "= [] trains nothing; name at least one of the parameters to train")
        allowed = ("m", "U", "V", "z") if self.rank else ("m", "W", "z")
        bad = [t for t in self.trainable if t not in allowed]
        if bad:
            raise InvalidParameter("agent.trainable", f"= {list(self.trainable)!r} contains {bad[0]!r}; with rank = "
                                   f"{self.rank} choose from {', '.join(allowed)}")
        if len(set(self.trainable)) != len(self.trainable):
            raise InvalidParameter("agent.trainable", f"= {list(self.trainable)!r} names a parameter twice")
        if not math.isnan(self.over) and (self.init != "lowrank" or self.rank != 1):
            raise InvalidParameter("agent.over", "sets sigma_zm only for init = 'lowrank' with rank = 1; remove it or "
                                   "change the agent")
        if self.representation == "overlaps":
            if self.custom:
                raise InvalidParameter("agent.representation", f"= 'overlaps' trains the RNN's own Gram matrix; "
                                       f"agent.kind = {self.kind!r} steps its own core: use representation = 'vectors'")
            from ..config import family

            if not family("optimizer").resolve(cfg.train.optimizer).overlap_exact:
                raise InvalidParameter("train.optimizer", f"= {cfg.train.optimizer!r} cannot train agent.representation "
                                       "= 'overlaps': the Gram-matrix reduction holds for rotation-invariant updates "
                                       "(SGD, clipped or not) only; use optimizer = 'sgd' or representation = 'vectors'")
            if self.activation != "linear" or self.rank == 0 or self.g > 0:
                raise InvalidParameter("agent.representation", "= 'overlaps' needs a linear low-rank agent with g = 0 "
                                       "(activation = 'linear', rank >= 1); use representation = 'vectors'")


AGENTS = declare_family("agent", Agent, "loopdyn.agents", default="rnn")

"""The one optimisation loop (a clipped optimiser step with injected per-run hyper-parameters), shared by the
trainer and the stage theories; optimisers as parts (`train.optimizer`: `sgd`, `adam` or one of your own)."""

from ._optimize import Step as Step
from ._parts import OPTIMIZERS as OPTIMIZERS
from ._parts import SGD as SGD
from ._parts import Adam as Adam
from ._parts import Optimizer as Optimizer
from ._optimize import apply_gradient as apply_gradient
from ._optimize import clip_by_global_norm_eps as clip_by_global_norm_eps
from ._optimize import descend as descend
from ._optimize import gradient_descent as gradient_descent
from ._optimize import gram_sgd as gram_sgd
from ._optimize import init_optimizer as init_optimizer
from ._optimize import make_optimizer as make_optimizer

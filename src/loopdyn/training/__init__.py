"""Training: compiled epoch loops over vmapped ensembles, recorded to stores."""

from ._core import ClosedLoop as ClosedLoop
from ._core import Problem as Problem
from ._core import init_run as init_run
from ._core import make_chunk as make_chunk
from ._core import make_epoch as make_epoch
from ._core import make_optimizer as make_optimizer
from ._rollout import closed_loop as closed_loop
from ._runner import build_problem as build_problem
from ._runner import resume as resume
from ._runner import train as train

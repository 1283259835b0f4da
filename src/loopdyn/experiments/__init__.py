"""Named experiments: configurations shipped with the package and the chains that run them."""

from ._run import run_experiment as run_experiment

import os

# Two host devices, as the CLI uses on a 2-core machine, so the sharded ensemble path is tested.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()

import loopdyn  # noqa: E402,F401  (enables float64 support before any test builds arrays)

# Property tests draw their examples from a fixed seed: the same examples on every machine and run, so a CI
# result is reproducible (set HYPOTHESIS_PROFILE=explore locally to search afresh).
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

import pytest  # noqa: E402

SWEPT = ["epochs=6", "agent.N=8", "task.batch=16", "record.chunk=6", "sweep.train.lr=[0.003, 0.01]",
         "sweep.train.clip=[0.5]"]


@pytest.fixture(scope="session")
def swept_store(tmp_path_factory):
    """A small complete store of 2 learning rates x 2 seeds (linear-rank1, 6 epochs), shared by the tests
    that only read it (copy it before writing into it)."""
    cfg = loopdyn.load_config("linear-rank1", SWEPT, "0..1")
    return loopdyn.train(cfg, tmp_path_factory.mktemp("runs") / "swept.zarr", progress=False)

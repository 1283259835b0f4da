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

import os

# Two host devices, as the CLI uses on a 2-core machine, so the sharded ensemble path is tested.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()

import loopdyn  # noqa: E402,F401  (enables float64 support before any test builds arrays)

"""The errors loopdyn raises for bad input and bad stores: one line that names the problem and the fix."""


class LoopdynError(Exception):
    """Base of loopdyn's one-line errors (the CLI prints them as `loopdyn: error: ...`, exit code 2)."""


class ConfigError(LoopdynError, ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range (names the key)."""


class StoreError(LoopdynError, RuntimeError):
    """A path is not a loopdyn store, or the store is incomplete, locked, corrupt or from another version."""


class Interrupted(LoopdynError):
    """Training stopped on request (Ctrl-C) after a committed chunk; the store resumes from `epoch`."""

    def __init__(self, path, phase: int, epoch: int | None):
        self.path, self.phase, self.epoch = path, phase, epoch
        where = (f"at epoch {epoch}" + (f" of phase {phase}" if phase else "") if epoch is not None
                 else f"during phase {phase} (finished units are kept)")
        super().__init__(f"interrupted {where}; resume with: loopdyn train --resume {path}")

"""The errors loopdyn raises for bad input and bad stores: one line that names the problem and the fix."""


class LoopdynError(Exception):
    """Base of loopdyn's one-line errors (the CLI prints them as `loopdyn: error: ...`, exit code 2)."""


class ConfigError(LoopdynError, ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range (names the key)."""


class StoreError(LoopdynError, RuntimeError):
    """A path is not a loopdyn store, or the store is incomplete, locked, corrupt or from another version."""


class Interrupted(LoopdynError):
    """Training stopped on request (Ctrl-C) after a committed chunk; the store resumes from `epoch`."""

    def __init__(self, path, phase: int, epoch: int):
        self.path, self.phase, self.epoch = path, phase, epoch
        super().__init__(f"interrupted at epoch {epoch}" + (f" of phase {phase}" if phase else "")
                         + f"; resume with: loopdyn train --resume {path}")

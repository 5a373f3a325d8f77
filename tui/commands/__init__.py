"""The subcommands of `initlab`, one module each; ALL is the order they are listed in."""
from . import gain, presets, probe

ALL = [probe, gain, presets]

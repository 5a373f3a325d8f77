"""The subcommands of `initlab`, one module each; ALL is the order they are listed in."""
from . import gain, jacobian, presets, probe, serve, sweep, theory, train, widths

ALL = [probe, train, gain, presets, sweep, theory, jacobian, widths, serve]

"""The CLI's flags take their defaults from the library's configs and signatures (one source of defaults)."""

import dataclasses
import inspect

import pytest

from clusterseg import cli
from clusterseg.training.instances import InstanceTrainingConfig
from clusterseg.training.lifelong import LNSNetTrainingConfig
from clusterseg.unsupervised import DSCConfig, segment


def _cli_defaults(command) -> dict:
    out = {}
    for name, p in inspect.signature(command).parameters.items():
        default = getattr(p.default, "default", p.default)
        if default is not None and default is not ... and not isinstance(default, type(inspect.Parameter.empty)):
            out[name] = default
    return out


def _config_defaults(cls) -> dict:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


def _signature_defaults(fn, config=None) -> dict:
    """Keyword defaults of ``fn``; a None default means "the config's", taken from ``config``."""
    out = {n: p.default for n, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}
    if config is not None:
        out.update({n: v for n, v in _config_defaults(config).items() if n in out and out[n] is None})
    return out


@pytest.mark.parametrize(
    "command, library",
    [
        (cli.train_instances, _config_defaults(InstanceTrainingConfig)),
        (cli.train_lnsnet, _config_defaults(LNSNetTrainingConfig)),
        (cli.segment, _signature_defaults(segment, DSCConfig)),
    ],
    ids=["train instances", "train lnsnet", "segment"],
)
def test_cli_defaults_match_the_library(command, library):
    cli_defaults = _cli_defaults(command)
    shared = sorted(set(cli_defaults) & set(library))
    assert len(shared) >= 2, "the CLI command shares no option names with the library"
    mismatched = {n: (cli_defaults[n], library[n]) for n in shared if cli_defaults[n] != library[n]}
    assert not mismatched, f"CLI default != library default: {mismatched}"

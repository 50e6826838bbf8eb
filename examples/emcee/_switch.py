"""Picks the emcee implementation for the example scripts: ``--climcal`` on
the command line gives ``climcal.emcee``, otherwise emcee itself. The scripts
then use only ``emcee.<name>``, so the same text runs with either."""

import sys


def emcee_module():
    if "--climcal" in sys.argv:
        import climcal.emcee as emcee
    else:
        import emcee
    return emcee


def out_path(default):
    """The output file: the first argument that is not a flag."""
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    return args[0] if args else default

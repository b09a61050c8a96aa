"""The ``tami`` command line: one module per subcommand, assembled in :mod:`tami.cli.main`."""

"""``python -m sim.cli``: the ``esim`` command."""

from sim.cli import main

main()

"""``python -m perseus``: the same CLI as the ``perseus`` script (how ``--workers`` starts its workers)."""

from perseus.cli import main

main()

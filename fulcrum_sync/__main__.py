"""``python -m fulcrum_sync``: the same CLI as the ``fulcrum-sync`` script."""

from fulcrum_sync.cli import main

if __name__ == "__main__":
    main()

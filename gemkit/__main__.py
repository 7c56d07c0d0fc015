"""``python -m gemkit``: the ``gemkit`` command line."""

from gemkit.cli.main import main

if __name__ == "__main__":
    main()

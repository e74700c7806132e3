"""``python -m regioncount ...``: the command line, the same as the ``regioncount`` script.

This file is the program's entry point when run with ``-m``; nothing in the library imports it, so the
library itself still never depends on the command line."""

from regioncount_cli.main import main

if __name__ == "__main__":
    main(prog_name="regioncount")

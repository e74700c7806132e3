"""``python -m regioncount_cli ...``: the command line, the same as the ``regioncount`` script."""

from regioncount_cli.main import main

if __name__ == "__main__":
    main(prog_name="regioncount")

"""The click + rich command-line front end of regioncount (installed as ``regioncount_cli``)."""

"""The library's command-line scripts, each with ``make_parser()`` and ``main()`` as in TRL's ``trl/scripts``."""

"""Sub-commands of the ``iuie`` command line tool, one module each.

Every module here defines ``add_arguments(parser)`` and ``run(args) -> int``; its docstring's first line is
the sub-command's one-line help. ``iuie.cli`` lists them and imports a module only when it runs.
"""

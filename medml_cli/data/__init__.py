"""Data: ``formats/`` (readers with no registry), ``sources/`` (one registered data source per
file), ``base`` and ``image_base`` (the loaded dataset types and their checks).

Importing this package registers nothing; :func:`medml_cli.plugins.load_builtins` imports
:mod:`medml_cli.data.sources`, which registers every source in ``DATASETS``.
"""

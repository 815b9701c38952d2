"""Root conftest: kept small and free of heavy imports (``pytest-benchmark compare`` loads it).

The talkbench plugin itself is registered through the ``pytest11`` entry point of the package.
"""

pytest_plugins = ["pytester"]

"""talkbench's benchmark tests, shipped with the package: ``talkbench run [pytest args]`` (or
``pytest --pyargs talkbench_plugin.benchmarks``) runs them from any folder; the repository's
``benchmarks/`` re-exports them."""

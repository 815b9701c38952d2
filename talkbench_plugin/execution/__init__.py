"""Where cases run beyond one process: a Ray cluster (ray_executor.py, task.py), shards from a scheduler's
array job (shard.py). The plugin and the ``talkbench`` command only wire the options to these modules."""

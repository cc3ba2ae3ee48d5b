"""The isolated processes the gate's checks run in.

- :mod:`.worker`      the worker's side: read requests, run the checks, write answers
- :mod:`.isolation`   one worker process and its client: time and memory limits, crash containment
- :mod:`.forkserver`  the zygote that imports once and forks workers
- :mod:`.pool`        a pool of workers fed ahead of pytest's reporting

Nothing here imports Keras, TensorFlow or h5py at module level.
"""

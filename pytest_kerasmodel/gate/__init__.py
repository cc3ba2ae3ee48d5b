"""The artifact gate: ``pytest --keras-model-dir DIR`` checks every Keras artifact under DIR.

- :mod:`.discover`  which paths are artifacts (files by suffix, SavedModel folders)
- :mod:`.collect`   pytest collectors and items, one item per artifact and check
- :mod:`.checks`    the checks themselves, run on one artifact at a time
- :mod:`.worker`    the isolated worker process the checks run in, and its client
- :mod:`.goldens`   where an artifact's goldens live, recording and reading them
- :mod:`.report`    the terminal summary table and the JSON report
- :mod:`.fixture`   the ``keras_artifact`` fixture's value

Nothing here imports Keras, TensorFlow or h5py at module level.
"""

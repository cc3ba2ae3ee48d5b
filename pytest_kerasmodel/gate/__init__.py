"""The artifact gate: ``pytest --keras-model-dir DIR`` checks every Keras artifact under DIR.

The worker side (runs in the isolated worker, imports Keras only when a check needs it):

- :mod:`.protocol`  what both ends of the worker pipe share: check names, statuses, the request,
  the result, ``CheckFailure`` and ``CheckSkipped``
- :mod:`.runner`    runs the checks of one artifact in order, with what they depend on
- :mod:`.checks`    the check bodies (integrity, safety, load, compile, finite, structure,
  predictions, budgets)
- :mod:`.subject`   the artifact under check and what the checks share
- :mod:`.loading`   loading with Keras, and why a load failed
- :mod:`.zipcrc`    a large archive's CRCs verified in a thread
- :mod:`.exported`  the predictions check of exported graphs, with their own runtimes
- :mod:`.workers`   the isolated processes: worker, client, zygote and pool

The pytest side:

- :mod:`.discover`  which paths are artifacts (files by suffix, SavedModel folders)
- :mod:`.collect`   pytest collectors and items, one item per artifact and check
- :mod:`.session`   the session's requests, answers and their order
- :mod:`.verdicts`  the authenticated verdict cache
- :mod:`.goldens`   where an artifact's goldens live, recording and reading them
- :mod:`.report`    the terminal summary table and the JSON report (:mod:`.sarif`,
  :mod:`.html`)
- :mod:`.fixture`   the ``keras_artifact`` fixture's value
- :mod:`.standalone` ``kerasmodel gate``, without pytest

Nothing here imports Keras, TensorFlow or h5py at module level.
"""

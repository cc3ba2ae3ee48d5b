"""Save a model, reload it, and say what changed.

- :mod:`.run`       :func:`assert_roundtrip`: each format saved and reloaded, in this process or
  under other backends
- :mod:`.state`     a model as plain data (outputs, variables, optimizer, compile state), and two
  of them compared
- :mod:`.report`    what changed, as data (:class:`RoundtripDiff`), and its text
- :mod:`.hints`     why a reload failed, in the user's words
- :mod:`.notes`     the notes of a passing roundtrip, as :class:`KerasModelNote` warnings
- :mod:`.backends`  the child processes that reload a file under another backend
- :mod:`.child`     the child's side of that pipe (``python -m pytest_kerasmodel.roundtrip.child``)

Nothing here imports Keras at module level.
"""

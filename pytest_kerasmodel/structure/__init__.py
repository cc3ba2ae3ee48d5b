"""Keras files explained and compared without Keras: h5py, zipfile and json only.

- :mod:`.describe`  :func:`describe_artifact`: an artifact as plain data, and its text
- :mod:`.weights`   :func:`read_weights`: every saved variable by its Keras name
- :mod:`.expected`  :func:`assert_h5_structure`: the structure you expect against the file's
- :mod:`.match`     :func:`assert_artifacts_match`: two files compared as Keras sees them
- :mod:`.golden`    the ``"kerasmodel_structure"`` golden document
- :mod:`.tree`      the HDF5 tree explained: each group, dataset and attribute's Keras meaning
- :mod:`.page`      what ``inspect --html`` shows, as data (tree, weight statistics, findings)
- :mod:`.html`      that page rendered: one self-contained HTML file
"""

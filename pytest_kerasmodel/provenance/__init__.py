"""Provenance: whether an artifact is the one that was approved, by an OpenSSF Model Signing
(OMS) signature or by a lock of approved digests. Files only: hashlib and json here, the
``model-signing`` library (the ``[signing]`` extra) imported at first use in :mod:`.signature`.

- :mod:`.digests`    the parts of an artifact and their SHA-256, in one read of every byte, and
                     :class:`PartsDiff` (what changed, was added or removed since)
- :mod:`.signature`  :func:`sign_artifact` and :func:`verify_signature` (OMS bundles through
                     ``model-signing``), :class:`SignatureVerdict`
- :mod:`.lock`       :func:`write_lock`, :func:`read_lock`, :func:`compare_to_lock`: the lock file
                     (an unsigned in-toto Statement v1 of every part's digest)
"""

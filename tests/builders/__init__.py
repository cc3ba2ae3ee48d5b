"""The tests' factories: real tiny Keras models, and artifacts written by the real writers.

- :mod:`.roundtrip_models`, :mod:`.export_models`, :mod:`.tfkeras_models`: models to save
- :mod:`.describe_artifacts`, :mod:`.gate_artifacts`, :mod:`.layouts`, :mod:`.exported_artifacts`:
  files and folders in every layout the plugin reads, healthy and broken
- :mod:`.attacks`: hostile artifacts, each leaving a marker file if anything in it ever ran
"""

"""Scripts the tests run in child processes (a fresh interpreter per Keras backend)."""

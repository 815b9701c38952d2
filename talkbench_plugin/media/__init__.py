"""Media: streaming decode (PyAV), alignment onto the reference timeline, audio."""

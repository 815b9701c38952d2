"""FVD beyond one case: the pooled FVD of a (language, pipeline) group (``groups``)."""

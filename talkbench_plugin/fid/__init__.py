"""FID as pyiqa computes it, streamed from decoded frames, with cached reference statistics.

- ``features``: ``InceptionNet`` (pyiqa's network and preprocessing, explicit weights), ``InceptionStats``
  (running statistics of one frame stream).
- ``sampling``: ``Sampling`` (which frames count) and the resize modes.
- ``moments``: ``Moments`` (float64 running sums; group pooling by ``+``) and ``GaussianStats``.
- ``frechet``: exact eigenvalue Fréchet distance and ``fid`` with sample-size warnings.
- ``cache``: reference moments on disk, keyed by video content, segment and protocol.

Submodules are imported explicitly: ``features`` imports pyiqa (seconds), the others do not.
"""

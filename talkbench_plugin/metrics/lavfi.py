"""FFmpeg's two-input quality filters (``psnr``, ``ssim``) run in-process through a PyAV filter graph."""

from __future__ import annotations

from fractions import Fraction

import av


class PairFilter:
    """Frame pairs through FFmpeg's filter ``name`` (main input: the reference); its metadata per pair.

    One single-threaded graph: one metric per xdist worker, and a fixed float summation order. The
    filter pairs its inputs by timestamp, so both frames of a pair get the same pts while pushed (the
    callers' are restored). Output can lag its input: ``push`` and ``close`` return what came out, in order.
    """

    def __init__(self, name: str, frame: av.VideoFrame) -> None:
        self.geometry = (frame.width, frame.height, frame.format.name)
        self._graph = av.filter.Graph()
        self._graph.threads = 1
        self._sources = tuple(
            self._graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                                   time_base=Fraction(1, 25))
            for _ in range(2)
        )
        node, self._sink = self._graph.add(name), self._graph.add("buffersink")
        self._sources[0].link_to(node, 0, 0)
        self._sources[1].link_to(node, 0, 1)
        node.link_to(self._sink)
        self._graph.configure()
        self._pts = 0

    def push(self, ref: av.VideoFrame, gen: av.VideoFrame) -> list[dict[str, str]]:
        for frame in (ref, gen):
            if (frame.width, frame.height, frame.format.name) != self.geometry:
                raise ValueError(f"frame {frame.width}x{frame.height} {frame.format.name} != {self.geometry}")
        saved = ref.pts, gen.pts
        ref.pts = gen.pts = self._pts
        try:
            self._sources[0].push(ref)
            self._sources[1].push(gen)
        finally:
            ref.pts, gen.pts = saved
        self._pts += 1
        return self._drain()

    def close(self) -> list[dict[str, str]]:
        """End both inputs; the metadata of the pairs the filter still held."""
        for source in self._sources:
            source.push(None)
        return self._drain()

    def _drain(self) -> list[dict[str, str]]:
        out = []
        while True:
            try:
                frame = self._sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return out
            if frame.format.name != self.geometry[2]:
                raise ValueError(f"libavfilter converted {self.geometry[2]} to {frame.format.name}")
            out.append(dict(frame.metadata))

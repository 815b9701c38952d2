"""Device placement (devices.py), simulated: fake CUDA device counts, xdist worker ids and visible lists."""

import pytest

from talkbench_plugin.devices import assign, command_env


@pytest.mark.parametrize(
    ("choice", "worker", "count", "device"),
    [
        ("auto", None, 0, "cpu"),
        ("auto", "gw3", 0, "cpu"),
        ("auto", None, 2, "cuda:0"),
        ("auto", "gw0", 2, "cuda:0"),
        ("auto", "gw1", 2, "cuda:1"),
        ("auto", "gw2", 2, "cuda:0"),
        ("auto", "gw7", 3, "cuda:1"),
        ("cpu", "gw1", 4, "cpu"),
        ("cuda:1", "gw0", 2, "cuda:1"),
    ],
)
def test_assignment(choice: str, worker: str | None, count: int, device: str) -> None:
    assert assign(choice, worker, count) == device


def test_every_device_used_by_as_many_workers_as_possible() -> None:
    devices = [assign("auto", f"gw{i}", 3) for i in range(8)]
    assert {d: devices.count(d) for d in set(devices)} == {"cuda:0": 3, "cuda:1": 3, "cuda:2": 2}


@pytest.mark.parametrize(
    ("choice", "count", "message"),
    [("gpu", 1, "'gpu': expected auto, cpu or cuda:N"), ("cuda", 1, "expected auto, cpu or cuda:N"),
     ("cuda:2", 2, "'cuda:2': this machine has 2 CUDA device(s)"), ("cuda:0", 0, "has 0 CUDA device(s)")],
)
def test_bad_choices(choice: str, count: int, message: str) -> None:
    with pytest.raises(ValueError) as info:
        assign(choice, None, count)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("device", "visible", "expected"),
    [("cpu", None, ""), ("cuda:1", "", "1"), ("cuda:1", "4,5", "5"), ("cuda:0", "GPU-abc, GPU-def", "GPU-abc")],
)
def test_commands_see_only_their_physical_device(device: str, visible: str | None, expected: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert command_env(device, visible) == {"CUDA_VISIBLE_DEVICES": expected}


def test_visible_list_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert command_env("cuda:1") == {"CUDA_VISIBLE_DEVICES": "3"}
    with pytest.raises(ValueError, match=r"cuda:2: only 2 device\(s\) visible \(CUDA_VISIBLE_DEVICES=2,3\)"):
        command_env("cuda:2")

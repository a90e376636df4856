"""Early binding: the sockets are bound before the imports, and handed over only when the
parsed configuration matches what was bound (else released, for serve() to bind)."""

from __future__ import annotations

import json
from pathlib import Path

import zmq
from jupyter_client.connect import write_connection_file

from kernelsvc.supervisor import earlybind


def connection_file(tmp_path: Path) -> Path:
    path = tmp_path / "kernel.json"
    write_connection_file(str(path), key=b"k")
    return path


def shell_port_free(path: Path) -> bool:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    try:
        sock.bind(f"tcp://127.0.0.1:{json.loads(path.read_text())['shell_port']}")
        return True
    except zmq.ZMQError:
        return False
    finally:
        sock.close(linger=0)
        ctx.term()


def test_bound_sockets_are_handed_to_the_matching_configuration(tmp_path):
    path = connection_file(tmp_path)
    earlybind.bind_early(["-f", str(path)])
    assert not shell_port_free(path)
    bound = earlybind.take_bound(path, earlybind.DEFAULT_MAX_MESSAGE_SIZE, None)
    assert bound is not None
    ctx, sockets, info = bound
    assert info.shell_port == json.loads(path.read_text())["shell_port"]
    assert earlybind.take_bound(path, earlybind.DEFAULT_MAX_MESSAGE_SIZE, None) is None  # once
    sockets.close()
    sockets.hb.close(linger=0)
    ctx.term()


def test_another_configuration_gets_the_ports_back(tmp_path):
    path = connection_file(tmp_path)
    earlybind.bind_early([f"--connection-file={path}"])
    assert not shell_port_free(path)
    assert earlybind.take_bound(path, 2**20, None) is None
    assert shell_port_free(path)


def test_only_the_plain_case_is_bound_early(tmp_path):
    path = connection_file(tmp_path)
    for argv in (["-f", str(path), "--max-message-size", "2M"],
                 ["-f", str(path), "--gateway-public-key", "x"],
                 ["-f", str(tmp_path / "missing.json")], []):
        earlybind.bind_early(argv)
        assert earlybind.take_bound(path, earlybind.DEFAULT_MAX_MESSAGE_SIZE, None) is None
    assert shell_port_free(path)

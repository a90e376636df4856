"""Enterprise Gateway's launcher contract, against a fake gateway that holds the RSA key."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess

import pytest
from jupyter_client import BlockingKernelClient

from tests.helpers.kernel import KERNELSVC, RunningKernel, execute, get_reply

Cryptodome = pytest.importorskip("Cryptodome", reason="gateway mode needs pycryptodomex")
from Cryptodome.Cipher import AES, PKCS1_v1_5  # noqa: E402
from Cryptodome.PublicKey import RSA  # noqa: E402
from Cryptodome.Util.Padding import unpad  # noqa: E402

pytestmark = pytest.mark.timeout(90)


def decrypt(payload: bytes, private_key) -> dict:
    outer = json.loads(base64.b64decode(payload))
    assert outer["version"] == 1
    aes_key = PKCS1_v1_5.new(private_key).decrypt(base64.b64decode(outer["key"]), None)
    body = AES.new(aes_key, AES.MODE_ECB).decrypt(base64.b64decode(outer["conn_info"]))
    return json.loads(unpad(body, 16))


def tell(comm_port: int, request: dict) -> None:
    with socket.create_connection(("127.0.0.1", comm_port), timeout=5) as conn:
        conn.sendall(json.dumps(request).encode())


def test_gateway_launch_signals_and_shutdown(tmp_path):
    private_key = RSA.generate(2048)
    public_b64 = base64.b64encode(private_key.publickey().export_key(format="DER")).decode()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(60)
    low = 40000 + os.getpid() % 20000
    conn_file = tmp_path / "kernel.json"
    stderr = tmp_path / "kernelsvc.log"
    with open(stderr, "wb") as err:
        proc = subprocess.Popen(
            [*KERNELSVC, "start", "-f", str(conn_file), "--ip", "127.0.0.1",
             "--gateway-response-address", f"127.0.0.1:{listener.getsockname()[1]}",
             "--gateway-public-key", public_b64, "--gateway-port-range", f"{low}..{low + 999}",
             "--gateway-kernel-id", "k-123", "--log-format", "json"],
            stdout=err, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
    kernel = RunningKernel(proc=proc, connection_file=conn_file, stderr_path=stderr)
    try:
        conn, _ = listener.accept()
        with conn:
            chunks = []
            while data := conn.recv(65536):
                chunks.append(data)
        info = decrypt(b"".join(chunks), private_key)
        assert info["kernel_id"] == "k-123" and info["pid"] == proc.pid
        ports = [info[k] for k in ("shell_port", "iopub_port", "stdin_port", "control_port",
                                   "hb_port", "comm_port")]
        assert all(low <= port <= low + 999 for port in ports)
        assert info["key"] == json.loads(conn_file.read_text())["key"]

        kc = BlockingKernelClient()
        kc.load_connection_info(info)
        kc.start_channels()
        kc.wait_for_ready(timeout=30)
        kernel.remember_children()
        assert execute(kc, "1 + 1")[0]["content"]["status"] == "ok"
        tell(info["comm_port"], {"signum": 0})  # the gateway's liveness poll: nothing happens
        msg_id = kc.execute("while True:\n    pass")
        while True:
            msg = kc.get_iopub_msg(timeout=10)
            if msg["parent_header"].get("msg_id") == msg_id and \
                    msg["msg_type"] == "execute_input":
                break
        tell(info["comm_port"], {"signum": int(signal.SIGINT)})
        assert get_reply(kc, msg_id, 10)["content"]["ename"] == "KeyboardInterrupt"
        tell(info["comm_port"], {"shutdown": 1})
        assert proc.wait(timeout=10) == 0
        kc.stop_channels()
    finally:
        listener.close()
        kernel.stop()


def test_gateway_flags_must_come_together(tmp_path):
    result = subprocess.run([*KERNELSVC, "start", "-f", str(tmp_path / "c.json"),
                             "--gateway-response-address", "127.0.0.1:1"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "needs both --gateway-response-address and --gateway-public-key" in result.stderr

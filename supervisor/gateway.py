"""Enterprise Gateway's kernel-launcher contract, so a gateway can schedule kernelsvc pods.

The gateway starts the kernel with a response address, a public key and a port range.
The kernel picks its ports in that range, then sends its connection info (plus pid,
pgid, kernel_id and a "comm port") to the response address: AES-encrypted with a fresh
key that is RSA-encrypted with the gateway's public key, all base64 JSON. On the comm
port the gateway sends JSON requests: {"signum": N} (0 is a liveness poll, 2 an
interrupt) and {"shutdown": 1}.

Needs pycryptodomex: ``pip install kernelsvc[gateway]``.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from dataclasses import dataclass

from kernelsvc.supervisor.errors import SupervisorError

LAUNCHER_VERSION = 1


@dataclass(frozen=True)
class GatewayConfig:
    response_address: str  # host:port
    public_key: str  # base64 of the gateway's RSA public key
    port_range: tuple[int, int] = (0, 0)  # (0, 0): any port
    kernel_id: str = ""


def parse_port_range(text: str | None) -> tuple[int, int]:
    if not text:
        return (0, 0)
    try:
        low, high = (int(part) for part in text.split(".."))
    except ValueError:
        raise SupervisorError(f"--gateway-port-range {text!r}: use LOW..HIGH") from None
    if not 0 < low <= high <= 65535:
        raise SupervisorError(f"--gateway-port-range {text!r}: ports must be 1..65535, LOW<=HIGH")
    return (low, high)


def encrypt_payload(connection_info: dict, public_key_b64: str) -> bytes:
    """What the gateway's launcher protocol expects on the response address."""
    from Cryptodome.Cipher import AES, PKCS1_v1_5
    from Cryptodome.PublicKey import RSA
    from Cryptodome.Random import get_random_bytes
    from Cryptodome.Util.Padding import pad

    aes_key = get_random_bytes(16)
    body = AES.new(aes_key, AES.MODE_ECB).encrypt(pad(json.dumps(connection_info).encode(), 16))
    public_key = RSA.import_key(base64.b64decode(public_key_b64))
    wrapped_key = PKCS1_v1_5.new(public_key).encrypt(aes_key)
    payload = {
        "version": LAUNCHER_VERSION,
        "key": base64.b64encode(wrapped_key).decode(),
        "conn_info": base64.b64encode(body).decode(),
    }
    return base64.b64encode(json.dumps(payload).encode())


def open_comm_port(port_range: tuple[int, int]) -> socket.socket:
    """The listening socket for the gateway's signal and shutdown requests."""
    low, high = port_range
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for port in ([0] if low == 0 else range(low, high + 1)):
        try:
            sock.bind(("0.0.0.0", port))
            break
        except OSError:
            continue
    else:
        sock.close()
        raise SupervisorError(f"no free port for the gateway comm port in {low}..{high}")
    sock.listen(8)
    sock.setblocking(False)
    return sock


def announce(gateway: GatewayConfig, connection_info: dict, comm_port: int) -> None:
    """Send our connection info to the gateway's response address."""
    host, _, port = gateway.response_address.rpartition(":")
    if not host or not port.isdigit():
        raise SupervisorError(f"--gateway-response-address {gateway.response_address!r}: "
                              f"use HOST:PORT")
    info = dict(connection_info)
    info.update(pid=os.getpid(), pgid=os.getpgid(0), comm_port=comm_port,
                kernel_id=gateway.kernel_id)
    try:
        payload = encrypt_payload(info, gateway.public_key)
    except ImportError:
        raise SupervisorError("gateway mode needs pycryptodomex: "
                              "pip install 'kernelsvc[gateway]'") from None
    except (ValueError, TypeError) as exc:
        raise SupervisorError(f"--gateway-public-key: not a usable RSA key ({exc})") from None
    try:
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(payload)
    except OSError as exc:
        raise SupervisorError(f"cannot reach the gateway at {gateway.response_address}: "
                              f"{exc.strerror or exc}") from None


def read_request(conn: socket.socket) -> dict:
    """One JSON request per connection; the gateway closes its side when done."""
    conn.settimeout(5)
    chunks = []
    while data := conn.recv(4096):
        chunks.append(data)
    request = json.loads(b"".join(chunks) or b"{}")
    return request if isinstance(request, dict) else {}

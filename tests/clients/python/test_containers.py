"""The container files stay in step with the binary: every flag and broker
config that docker-compose.yml and the Dockerfile pass is one the broker
accepts, and a broker started with them answers. (No container runtime runs
here; the images themselves are built by people who have one.)"""

import json
import re

import urllib.request

import yaml
from confluent_kafka.admin import AdminClient

from conftest import ROOT, Broker


def local_args(args):
    """The container arguments, with the listeners on free local ports (and
    advertised as such) and the store left at its local default (MinIO is
    not here)."""
    out = []
    for arg in args:
        flag = arg.split("=", 1)[0]
        if flag in ("--listen", "--advertised-listener", "--metrics-listen", "--remote", "--data-dir"):
            continue
        out.append(arg)
    return out


def answers(broker):
    """Kafka clients and the metrics endpoint both get answers."""
    admin = AdminClient({"bootstrap.servers": broker.addr})
    assert admin.list_topics(timeout=10).brokers
    with urllib.request.urlopen(f"http://{broker.metrics_addr}/metrics", timeout=10) as r:
        assert r.status == 200


def test_compose_runs_strata_beside_minio_with_a_bucket_and_accepted_settings():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"minio", "create-bucket", "strata"} <= set(services)
    assert "mc mb" in " ".join(services["create-bucket"]["command"])
    strata = services["strata"]
    assert strata["depends_on"]["create-bucket"]["condition"] == "service_completed_successfully"
    args = strata["command"]
    flags = {a.split("=", 1)[0] for a in args}
    assert {"--listen", "--metrics-listen", "--remote", "--advertised-listener"} <= flags
    assert any(a.startswith("--set=log.local.retention") for a in args)
    assert "9644:9644" in strata["ports"]

    b = Broker(*local_args(args))
    try:
        answers(b)
    finally:
        b.stop()


def test_dockerfile_is_multi_stage_and_passes_accepted_flags():
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    entry = json.loads(re.search(r"^ENTRYPOINT (.*)$", text, re.M).group(1))
    cmd = json.loads(re.search(r"^CMD (.*)$", text, re.M).group(1))
    assert entry[0] == "strata"
    args = entry[1:] + cmd
    # Pair up "--flag value" as "--flag=value" and check them like compose's.
    paired = [f"{args[i]}={args[i + 1]}" for i in range(0, len(args), 2)]
    assert {p.split("=")[0] for p in paired} >= {"--data-dir", "--listen", "--metrics-listen"}
    b = Broker(*local_args(paired))
    try:
        answers(b)
    finally:
        b.stop()

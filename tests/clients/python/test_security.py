"""Security end to end: TLS listeners (rustls), SASL/SCRAM and PLAIN, ACLs
with Kafka's StandardAuthorizer name, exercised with confluent-kafka,
kafka-python and kcat against the real broker, with a PKI made by openssl."""

import base64
import hashlib
import hmac
import json
import os
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient, ConfigResource,
    NewTopic, ResourcePatternType, ResourceType, ScramCredentialInfo, ScramMechanism,
    UserScramCredentialDeletion, UserScramCredentialUpsertion,
)

from conftest import Broker, poll_records, strata_bin

ADMIN_PASSWORD = "admin-secret-9"
BOB_PASSWORD = "bob-secret-7"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def issue(d, name, subject, ext):
    """A key and a certificate signed by the test CA in `d`."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", subject, cwd=d)
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(ext)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    with open(os.path.join(d, f"{name}-keystore.pem"), "w") as out:
        for part in (f"{name}.key", f"{name}.pem"):
            out.write(open(os.path.join(d, part)).read())


SERVER_EXT = ("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
              "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
CLIENT_EXT = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n"


class Pki:
    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="strata-pki-")
        d = self.dir = self.tmp.name
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                "-days", "2", "-subj", "/O=Strata Test/CN=Strata Test CA", cwd=d)
        issue(d, "server", "/O=Strata/CN=localhost", SERVER_EXT)
        issue(d, "alice", "/O=Strata/OU=eng/CN=alice", CLIENT_EXT)
        issue(d, "admin", "/O=Strata/CN=admin", CLIENT_EXT)

    def path(self, name):
        return os.path.join(self.dir, name)


class SecureBroker(Broker):
    """A broker with the given listeners; `listeners` maps each listener's
    name to its bound address, read from the lines the broker prints."""

    def __init__(self, pki, names, *settings):
        self.names = names
        self.pki = pki
        sets = []
        for s in settings:
            sets += ["--set", s]
        super().__init__(*sets)

    def _spawn(self):
        if not os.path.exists(os.path.join(self.data_dir, "meta", "scram-credentials.json")):
            # The first administrator, added offline before the broker starts.
            out = subprocess.run(
                [strata_bin(), "users", "add", "admin", "--mechanism", "SCRAM-SHA-512",
                 "--data-dir", self.data_dir],
                input=ADMIN_PASSWORD + "\n", capture_output=True, text=True, check=True)
            assert "admin" in out.stdout
        super()._spawn()
        self.listeners = {}
        for _ in self.names:
            line = self.proc.stdout.readline().decode().strip()
            assert line.startswith("strata listener "), line
            _, _, name, _proto, _, addr = line.split(" ")
            self.listeners[name] = addr

    def sasl(self, user="admin", password=ADMIN_PASSWORD, mechanism="SCRAM-SHA-512", **extra):
        return {"bootstrap.servers": self.listeners["SASL_SSL"], "security.protocol": "SASL_SSL",
                "sasl.mechanisms": mechanism, "sasl.username": user, "sasl.password": password,
                "ssl.ca.location": self.pki.path("ca.pem"), **extra}

    def ssl(self, who="alice", **extra):
        return {"bootstrap.servers": self.listeners["SSL"], "security.protocol": "SSL",
                "ssl.ca.location": self.pki.path("ca.pem"),
                "ssl.certificate.location": self.pki.path(f"{who}.pem"),
                "ssl.key.location": self.pki.path(f"{who}.key"), **extra}


LISTENERS = ["PLAINTEXT", "SASL_SSL", "SSL"]


def secure_settings(pki, *more):
    return (
        "listeners=PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0,SSL://127.0.0.1:0",
        f"ssl.keystore.location={pki.path('server-keystore.pem')}",
        f"ssl.truststore.location={pki.path('ca.pem')}",
        "ssl.client.auth=requested",
        "ssl.reload.interval.ms=300",
        "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users=User:admin;User:CN=admin,O=Strata",
        "metrics.basic.auth.enable=true",
        *more,
    )


@pytest.fixture(scope="module")
def pki():
    p = Pki()
    yield p
    p.tmp.cleanup()


@pytest.fixture
def secure(pki):
    b = SecureBroker(pki, LISTENERS, *secure_settings(pki))
    yield b
    b.stop()


def create_topic(config, name, partitions=1):
    admin = AdminClient(config)
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(15)


def produce(config, topic, n, prefix="m"):
    p = Producer({**config, "linger.ms": 5})
    for i in range(n):
        p.produce(topic, key=str(i).encode(), value=f"{prefix}-{i}".encode())
    assert p.flush(30) == 0


def consume_group(config, topic, group, n):
    c = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = poll_records(c, n, 30)
    c.close()
    return got


def first_error(consumer, seconds=15):
    """The first error `consumer` reports within `seconds`, or None; closes it."""
    err = None
    deadline = time.time() + seconds
    while err is None and time.time() < deadline:
        m = consumer.poll(0.5)
        if m is not None and m.error() is not None:
            err = m.error()
    consumer.close()
    return err


def add_user(admin_config, user, password, mechanism=ScramMechanism.SCRAM_SHA_512):
    admin = AdminClient(admin_config)
    futures = admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion(user, ScramCredentialInfo(mechanism, 4096), password.encode())])
    for f in futures.values():
        f.result(15)


def auth_errors(config, seconds=10):
    """The errors a client with `config` reports while trying to connect."""
    errors = []
    admin = AdminClient({**config, "error_cb": errors.append})
    with pytest.raises(KafkaException) as e:
        admin.list_topics(timeout=seconds)
    errors.append(e.value.args[0])
    admin.poll(1)
    return errors


# --- the Kafka protocol by hand, for exact error codes -----------------------

def request(sock, api_key, version, body, correlation=1):
    header = struct.pack(">hhih", api_key, version, correlation, 4) + b"test"
    if version >= 2 and api_key == 36:
        header += b"\x00"
    frame = header + body
    sock.sendall(struct.pack(">i", len(frame)) + frame)
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    return recv_exact(sock, size)[4:]


def recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return out


def string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def sasl_authenticate(sock, token):
    """SaslAuthenticate v1: (error code, message, auth bytes)."""
    body = request(sock, 36, 1, struct.pack(">i", len(token)) + token, correlation=2)
    code = struct.unpack(">h", body[:2])[0]
    mlen = struct.unpack(">h", body[2:4])[0]
    msg = body[4:4 + mlen].decode() if mlen >= 0 else None
    rest = body[4 + max(mlen, 0):]
    blen = struct.unpack(">i", rest[:4])[0]
    return code, msg, rest[4:4 + blen]


def scram_attempt(broker, user, password):
    """A whole SCRAM-SHA-512 exchange over TLS; returns the final error code
    and whether the broker then closed the connection."""
    ctx = ssl.create_default_context(cafile=broker.pki.path("ca.pem"))
    host, port = broker.listeners["SASL_SSL"].rsplit(":", 1)
    raw = socket.create_connection((host, int(port)), timeout=10)
    sock = ctx.wrap_socket(raw, server_hostname="localhost")
    hs = request(sock, 17, 1, string("SCRAM-SHA-512"))
    assert struct.unpack(">h", hs[:2])[0] == 0
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user},r={nonce}"
    code, msg, server_first = sasl_authenticate(sock, ("n,," + first_bare).encode())
    assert code == 0, msg
    fields = dict(kv.split("=", 1) for kv in server_first.decode().split(","))
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
    client_key = hmac.new(salted, b"Client Key", "sha512").digest()
    stored = hashlib.sha512(client_key).digest()
    without_proof = f"c=biws,r={fields['r']}"
    auth_message = f"{first_bare},{server_first.decode()},{without_proof}".encode()
    signature = hmac.new(stored, auth_message, "sha512").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    code, msg, _ = sasl_authenticate(sock, f"{without_proof},p={base64.b64encode(proof).decode()}".encode())
    closed = False
    if code != 0:
        sock.settimeout(5)
        try:
            closed = sock.recv(1) == b""
        except (ConnectionError, ssl.SSLError, OSError):
            closed = True
    sock.close()
    return code, msg, closed


# --- tests -------------------------------------------------------------------

def test_sasl_ssl_scram_with_confluent_kafka_kafka_python_and_kcat(secure):
    admin_conf = secure.sasl()
    create_topic(admin_conf, "sec-events", 3)
    produce(admin_conf, "sec-events", 300)
    got = consume_group(admin_conf, "sec-events", "sec-group", 300)
    assert sorted(m.value() for m in got) == sorted(f"m-{i}".encode() for i in range(300))
    admin = AdminClient(admin_conf)
    groups = admin.list_consumer_groups().result(15)
    assert "sec-group" in [g.group_id for g in groups.valid]

    # kafka-python, the same listener and mechanism.
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic as KpNewTopic
    kp = dict(bootstrap_servers=secure.listeners["SASL_SSL"], security_protocol="SASL_SSL",
              sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="admin",
              sasl_plain_password=ADMIN_PASSWORD, ssl_cafile=secure.pki.path("ca.pem"))
    kadmin = KafkaAdminClient(**kp)
    kadmin.create_topics([KpNewTopic("sec-kp", 1, 1)])
    assert "sec-kp" in kadmin.list_topics()
    kadmin.close()
    producer = KafkaProducer(**kp)
    for i in range(50):
        producer.send("sec-kp", f"kp-{i}".encode())
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer("sec-kp", group_id="sec-kp-group", auto_offset_reset="earliest",
                             consumer_timeout_ms=15000, **kp)
    values = []
    for m in consumer:
        values.append(m.value)
        if len(values) == 50:
            break
    consumer.commit()
    consumer.close()
    assert values == [f"kp-{i}".encode() for i in range(50)]

    # kcat (librdkafka 2.0).
    x = ["-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512",
         "-X", "sasl.username=admin", "-X", f"sasl.password={ADMIN_PASSWORD}",
         "-X", f"ssl.ca.location={secure.pki.path('ca.pem')}", "-b", secure.listeners["SASL_SSL"]]
    subprocess.run(["kcat", *x, "-P", "-t", "sec-kcat"], input=b"one\ntwo\nthree\n", check=True, timeout=60)
    out = subprocess.run(["kcat", *x, "-C", "-t", "sec-kcat", "-o", "beginning", "-e", "-q"],
                         capture_output=True, check=True, timeout=60)
    assert out.stdout.split() == [b"one", b"two", b"three"]
    # Its metadata listing, and a balanced consumer in a group.
    out = subprocess.run(["kcat", *x, "-L", "-J"], capture_output=True, check=True, timeout=60)
    assert "sec-kcat" in [t["topic"] for t in json.loads(out.stdout)["topics"]]
    out = subprocess.run(["kcat", *x, "-G", "sec-kcat-group", "-o", "beginning", "-c", "3", "-q", "sec-kcat"],
                         capture_output=True, check=True, timeout=90)
    assert sorted(out.stdout.split()) == [b"one", b"three", b"two"]
    groups = admin.list_consumer_groups().result(15)
    assert "sec-kcat-group" in [g.group_id for g in groups.valid]


def test_wrong_password_and_unknown_user_are_refused_and_closed(secure):
    code, msg, closed = scram_attempt(secure, "admin", "Wr0ngPassw0rd!")
    assert code == 58 and closed, (code, msg)  # SASL_AUTHENTICATION_FAILED
    assert "invalid credentials" in msg
    code, msg, closed = scram_attempt(secure, "nobody", "whatever")
    assert code == 58 and closed, (code, msg)
    code, _, _ = scram_attempt(secure, "admin", ADMIN_PASSWORD)
    assert code == 0
    errors = auth_errors(secure.sasl(password="Wr0ngPassw0rd!"))
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    errors = auth_errors(secure.sasl(user="nobody", mechanism="PLAIN"))
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    # PLAIN with the right password is checked against the SCRAM credential.
    AdminClient(secure.sasl(mechanism="PLAIN")).list_topics(timeout=15)
    metrics = secure_metrics(secure)
    assert metrics.get("strata_sasl_authentication_failures_total", 0) >= 4
    log = open(os.path.join(secure.dir.name, "broker.log")).read()
    assert "SASL authentication failed" in log
    assert "Wr0ngPassw0rd!" not in log and ADMIN_PASSWORD not in log


def test_plaintext_client_on_a_tls_listener_is_dropped_without_harm(secure):
    admin_conf = secure.sasl()
    create_topic(admin_conf, "sec-harm")
    host, port = secure.listeners["SASL_SSL"].rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    # An ApiVersions request in the clear.
    frame = struct.pack(">hhih", 18, 0, 1, 4) + b"test"
    s.sendall(struct.pack(">i", len(frame)) + frame)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    # Whatever comes back is a TLS alert record (content type 21) or nothing;
    # a Kafka answer would carry correlation id 1 after its length.
    assert data == b"" or data[0] == 0x15, f"not a TLS alert: {data[:16]!r}"
    assert data[4:8] != struct.pack(">i", 1), "a Kafka answer went out in the clear"
    produce(admin_conf, "sec-harm", 10)
    assert len(consume_group(admin_conf, "sec-harm", "sec-harm-g", 10)) == 10


def test_ssl_client_certificates_and_their_principal(secure):
    # The admin certificate's subject is a super user.
    admin_ssl = secure.ssl("admin")
    create_topic(admin_ssl, "alice-orders", 2)
    admin = AdminClient(admin_ssl)
    alice = "User:CN=alice,OU=eng,O=Strata"
    acls = [
        AclBinding(ResourceType.TOPIC, "alice-", ResourcePatternType.PREFIXED, alice, "*",
                   AclOperation.ALL, AclPermissionType.ALLOW),
        AclBinding(ResourceType.GROUP, "alice-", ResourcePatternType.PREFIXED, alice, "*",
                   AclOperation.READ, AclPermissionType.ALLOW),
    ]
    for f in admin.create_acls(acls).values():
        f.result(15)
    conf = secure.ssl("alice")
    produce(conf, "alice-orders", 100)
    assert len(consume_group(conf, "alice-orders", "alice-g", 100)) == 100

    from kafka import KafkaConsumer, KafkaProducer
    kp = dict(bootstrap_servers=secure.listeners["SSL"], security_protocol="SSL",
              ssl_cafile=secure.pki.path("ca.pem"), ssl_certfile=secure.pki.path("alice.pem"),
              ssl_keyfile=secure.pki.path("alice.key"))
    producer = KafkaProducer(**kp)
    for i in range(20):
        producer.send("alice-orders", f"kp-{i}".encode(), partition=0)
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer("alice-orders", group_id="alice-kp", auto_offset_reset="earliest",
                             consumer_timeout_ms=15000, **kp)
    n = 0
    for _ in consumer:
        n += 1
        if n == 120:
            break
    consumer.close()
    assert n == 120

    # kafka-python's admin client with the admin certificate.
    from kafka import KafkaAdminClient
    admin_kp = {**kp, "ssl_certfile": secure.pki.path("admin.pem"), "ssl_keyfile": secure.pki.path("admin.key")}
    kadmin = KafkaAdminClient(**admin_kp)
    assert "alice-orders" in kadmin.list_topics()
    listed = kadmin.list_groups()
    names = [g["group_id"] if isinstance(g, dict) else g[0] for g in listed]
    assert "alice-kp" in names, listed
    kadmin.close()

    x = ["-X", "security.protocol=SSL", "-X", f"ssl.ca.location={secure.pki.path('ca.pem')}",
         "-X", f"ssl.certificate.location={secure.pki.path('alice.pem')}",
         "-X", f"ssl.key.location={secure.pki.path('alice.key')}", "-b", secure.listeners["SSL"]]
    out = subprocess.run(["kcat", *x, "-C", "-t", "alice-orders", "-p", "0", "-o", "beginning", "-e", "-q"],
                         capture_output=True, check=True, timeout=60)
    assert len(out.stdout.split()) >= 20

    # Without a certificate the client is anonymous, which no ACL lets in.
    anon = {k: v for k, v in conf.items() if not k.startswith("ssl.certificate") and k != "ssl.key.location"}
    c = Consumer({**anon, "group.id": "alice-anon", "auto.offset.reset": "earliest"})
    c.assign([TopicPartition("alice-orders", 0, 0)])
    err = first_error(c)
    # Its group's coordinator lookup or its fetch is refused, whichever
    # comes first.
    assert err is not None and err.code() in (
        KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED), err


def test_acls_enforced_per_topic_group_and_cluster_and_durable(secure):
    admin_conf = secure.sasl()
    for t in ("pub-a", "secret"):
        create_topic(admin_conf, t)
        produce(admin_conf, t, 20)
    add_user(admin_conf, "bob", BOB_PASSWORD)
    admin = AdminClient(admin_conf)
    bob = "User:bob"
    for f in admin.create_acls([
        AclBinding(ResourceType.TOPIC, "pub-", ResourcePatternType.PREFIXED, bob, "*",
                   AclOperation.READ, AclPermissionType.ALLOW),
        AclBinding(ResourceType.GROUP, "bob-ok", ResourcePatternType.PREFIXED, bob, "*",
                   AclOperation.READ, AclPermissionType.ALLOW),
    ]).values():
        f.result(15)

    def check_bob(round):
        bob_conf = secure.sasl("bob", BOB_PASSWORD)
        topics = AdminClient(bob_conf).list_topics(timeout=15).topics
        assert "pub-a" in topics and "secret" not in topics
        named = AdminClient(bob_conf).list_topics("secret", timeout=15).topics["secret"]
        assert named.error is not None and named.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        assert len(consume_group(bob_conf, "pub-a", f"bob-ok-{round}", 20)) == 20
        c = Consumer({**bob_conf, "group.id": "bob-ok", "auto.offset.reset": "earliest"})
        c.subscribe(["secret"])
        err = first_error(c)
        assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
        # No READ on this group: joining it is refused.
        c = Consumer({**bob_conf, "group.id": "bob-denied", "auto.offset.reset": "earliest"})
        c.subscribe(["pub-a"])
        err = first_error(c)
        assert err is not None and err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, err
        # Only super users alter configs and ACLs.
        bob_admin = AdminClient(bob_conf)
        res = ConfigResource(ConfigResource.Type.TOPIC, "pub-a", set_config={"retention.ms": "1000"})
        with pytest.raises(KafkaException) as e:
            list(bob_admin.alter_configs([res]).values())[0].result(15)
        assert e.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        broker_res = ConfigResource(ConfigResource.Type.BROKER, "0", set_config={"log.retention.ms": "1000"})
        with pytest.raises(KafkaException) as e:
            list(bob_admin.alter_configs([broker_res]).values())[0].result(15)
        assert e.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
        with pytest.raises(KafkaException) as e:
            list(bob_admin.create_acls([AclBinding(
                ResourceType.TOPIC, "secret", ResourcePatternType.LITERAL, bob, "*",
                AclOperation.READ, AclPermissionType.ALLOW)]).values())[0].result(15)
        assert e.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED

    check_bob(1)
    secure.kill_and_restart()
    admin = AdminClient(secure.sasl())
    described = admin.describe_acls(AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
        AclOperation.ANY, AclPermissionType.ANY)).result(15)
    assert {(b.name, b.principal) for b in described} == {("pub-", bob), ("bob-ok", bob)}
    check_bob(2)
    # Deleting the topic ACL takes bob's access away at once.
    deleted = admin.delete_acls([AclBindingFilter(
        ResourceType.TOPIC, "pub-", ResourcePatternType.PREFIXED, bob, None,
        AclOperation.ANY, AclPermissionType.ANY)])
    assert len(list(deleted.values())[0].result(15)) == 1
    topics = AdminClient(secure.sasl("bob", BOB_PASSWORD)).list_topics(timeout=15).topics
    assert "pub-a" not in topics


def test_scram_user_created_and_deleted_through_the_admin_client(secure):
    admin_conf = secure.sasl()
    add_user(admin_conf, "carol", "carol-pw-1", ScramMechanism.SCRAM_SHA_256)
    admin = AdminClient(admin_conf)
    described = admin.describe_user_scram_credentials(["carol"])
    infos = described["carol"].result(15).scram_credential_infos
    assert [(i.mechanism, i.iterations) for i in infos] == [(ScramMechanism.SCRAM_SHA_256, 4096)]
    carol = secure.sasl("carol", "carol-pw-1", mechanism="SCRAM-SHA-256")
    assert AdminClient(carol).list_topics(timeout=15).brokers
    stored = open(os.path.join(secure.data_dir, "meta", "scram-credentials.json")).read()
    assert "carol-pw-1" not in stored and ADMIN_PASSWORD not in stored
    assert oct(os.stat(os.path.join(secure.data_dir, "meta", "scram-credentials.json")).st_mode & 0o777) == "0o600"
    for f in admin.alter_user_scram_credentials(
            [UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_256)]).values():
        f.result(15)
    errors = auth_errors(carol)
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    # Deleting it again is RESOURCE_NOT_FOUND.
    with pytest.raises(KafkaException) as e:
        for f in admin.alter_user_scram_credentials(
                [UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_256)]).values():
            f.result(15)
    assert e.value.args[0].code() == KafkaError.RESOURCE_NOT_FOUND


def secure_metrics(broker, user="admin", password=ADMIN_PASSWORD):
    """Each metric's samples summed over their labels, read with credentials."""
    out = {}
    for (name, _), value in broker.metrics(auth=(user, password)).items():
        out[name] = out.get(name, 0) + value
    return out


def test_metrics_endpoint_and_cli_with_security_settings(secure, tmp_path):
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://{secure.metrics_addr}/metrics", timeout=10)
    assert e.value.code == 401
    with pytest.raises(urllib.error.HTTPError):
        secure_metrics(secure, password="wrong")
    assert secure_metrics(secure).get("strata_metrics_authentication_failures_total") == 1

    create_topic(secure.sasl(), "sec-cli", 2)
    props = tmp_path / "client.properties"
    props.write_text(
        "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
        'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required '
        f'username="admin" password="{ADMIN_PASSWORD}";\n'
        f"ssl.truststore.location={secure.pki.path('ca.pem')}\n")
    out = subprocess.run([strata_bin(), "topics", "describe", "sec-cli", "--bootstrap",
                          secure.listeners["SASL_SSL"], "--command-config", str(props)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "sec-cli" in out.stdout
    # Anonymous on the plaintext listener sees nothing of it.
    out = subprocess.run([strata_bin(), "topics", "describe", "sec-cli", "--bootstrap", secure.addr],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "sec-cli" in out.stderr


def test_certificate_reload_without_restart(secure):
    def subject():
        ctx = ssl.create_default_context(cafile=secure.pki.path("ca.pem"))
        host, port = secure.listeners["SSL"].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                return dict(x[0] for x in s.getpeercert()["subject"])

    assert subject()["organizationName"] == "Strata"
    d = secure.pki.dir
    issue(d, "server2", "/O=Strata Reloaded/CN=localhost", SERVER_EXT)
    keystore = secure.pki.path("server-keystore.pem")
    os.replace(secure.pki.path("server2-keystore.pem"), keystore + ".new")
    os.replace(keystore + ".new", keystore)
    deadline = time.time() + 15
    while subject()["organizationName"] != "Strata Reloaded":
        assert time.time() < deadline, "the new certificate was not loaded"
        time.sleep(0.2)
    # Connections keep working with the new certificate.
    AdminClient(secure.sasl()).list_topics(timeout=15)


def test_reauthentication_keeps_a_producer_going(pki):
    b = SecureBroker(pki, LISTENERS, *secure_settings(pki, "connections.max.reauth.ms=2000"))
    try:
        conf = b.sasl()
        create_topic(conf, "sec-reauth")
        p = Producer({**conf, "linger.ms": 0})
        delivered = []
        for i in range(14):
            p.produce("sec-reauth", value=str(i).encode(),
                      on_delivery=lambda err, m: delivered.append(err))
            p.poll(0.5)
        assert p.flush(30) == 0
        assert delivered == [None] * 14
        m = secure_metrics(b)
        assert m.get("strata_sasl_authentications_total", 0) >= 3
    finally:
        b.stop()

"""Admin APIs with confluent-kafka's AdminClient, as operators use them."""

from confluent_kafka.admin import AdminClient


def test_describe_cluster_names_this_node_as_broker_and_controller(broker):
    admin = AdminClient({"bootstrap.servers": broker.addr})
    cluster = admin.describe_cluster(request_timeout=10).result(10)
    host, port = broker.addr.rsplit(":", 1)
    assert cluster.cluster_id
    assert [(n.id, n.host, n.port) for n in cluster.nodes] == [(0, host, int(port))]
    assert cluster.controller.id == 0
    # The cluster id is the one the broker keeps across restarts.
    broker.kill_and_restart()
    admin = AdminClient({"bootstrap.servers": broker.addr})
    again = admin.describe_cluster(request_timeout=10).result(10)
    assert again.cluster_id == cluster.cluster_id

"""A consume-transform-produce application with exactly-once results:
reads `src` with a consumer group, writes each value with "!" appended to
`dst` at the same partition, and commits the input offsets in the same
transaction. Any error ends the process (exit 3); whoever runs it starts
it again, and the new instance fences the old and resumes from the last
committed transaction, as an exactly-once application restarted by its
supervisor does.

usage: txn_ctp.py BOOTSTRAP SRC DST
"""

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer


def main():
    bootstrap, src, dst = sys.argv[1:4]
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "ctp-crash",
                         "linger.ms": 2, "transaction.timeout.ms": 10000})
    # The producer first: its InitProducerId aborts what a killed instance
    # left open, so the group's committed offsets are stable when read.
    producer.init_transactions(30)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "ctp-crash-group",
                         "group.instance.id": "ctp-crash-member", "session.timeout.ms": 6000,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "isolation.level": "read_committed"})
    consumer.subscribe([src])
    while True:
        msgs = [m for m in consumer.consume(20, 0.5) if m.error() is None]
        if not msgs:
            continue
        producer.begin_transaction()
        for m in msgs:
            producer.produce(dst, value=m.value() + b"!", partition=m.partition())
        producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                             consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        time.sleep(0.01)


if __name__ == "__main__":
    try:
        main()
    except KafkaException as e:
        print(f"txn_ctp: {e}", file=sys.stderr)
        sys.exit(3)

"""A stateful Quix Streams application in its exactly-once mode: counts
the words of `qwords` per key in its state store (backed by a changelog
topic on the broker) and writes each new count to `qcounts`, the output,
the changelog and the input offsets in one Kafka transaction per
checkpoint. Run in its own virtualenv (.venv-quix), as Quix Streams pins
its own confluent-kafka.

usage: quix_counter.py BOOTSTRAP STATE_DIR
"""

import sys

from quixstreams import Application


def main():
    bootstrap, state_dir = sys.argv[1:3]
    app = Application(
        broker_address=bootstrap,
        consumer_group="quix-counter",
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        state_dir=state_dir,
        commit_interval=0.2,
        use_changelog_topics=True,
    )
    words = app.topic("qwords", key_deserializer="str", value_deserializer="str")
    counts = app.topic("qcounts", key_serializer="str", value_serializer="json")

    def count(value, state):
        n = state.get("n", 0) + 1
        state.set("n", n)
        return {"word": value, "n": n}

    app.dataframe(words).apply(count, stateful=True).to_topic(counts)
    app.run()


if __name__ == "__main__":
    main()

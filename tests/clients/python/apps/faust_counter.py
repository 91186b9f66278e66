"""A stateful faust-streaming application for the compaction tests: it
counts words from the `words` topic into a table whose changelog is a
compacted topic on the broker, and writes the table it holds to
$COUNTER_STATE every half second. Its store is in memory, so after a
restart the table has only what it recovers from the changelog."""

import json
import os

import faust

app = faust.App(
    "strata-counter",
    broker=f"kafka://{os.environ['BROKER']}",
    store="memory://",
    topic_partitions=1,
    topic_replication_factor=1,
    web_enabled=False,
    datadir=os.environ["COUNTER_DATADIR"],
    broker_commit_every=1,
    broker_commit_interval=0.2,
)

words = app.topic("words", key_type=str, value_type=str)
counts = app.Table("counts", default=int, partitions=1)


@app.agent(words)
async def count(stream):
    async for word in stream:
        counts[word] += 1


@app.timer(0.5)
async def report():
    path = os.environ["COUNTER_STATE"]
    with open(path + ".tmp", "w") as f:
        json.dump(dict(counts.items()), f)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    app.main()

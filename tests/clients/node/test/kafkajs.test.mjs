// KafkaJS against the real broker: produce with keys, headers and null
// values under every codec, read everything back by offset, and look
// offsets up by timestamp.
//
// KafkaJS's Consumer only works through a consumer group, which Strata does
// not serve yet, so records are read back with KafkaJS's own cluster and
// broker Fetch API: the same protocol code its consumer uses.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import kafkajs from 'kafkajs'
import { CODECS } from './codecs.mjs'
import { startBroker } from './harness.mjs'

const { Kafka, logLevel } = kafkajs

const COUNT = 60
const BASE_TS = 1_700_000_000_000

function record(i) {
  return {
    key: i % 4 === 0 ? null : Buffer.from(`key-${i}`),
    value: i % 7 === 3 ? null : Buffer.from(`value-${i}-` + 'q'.repeat(i * 9)),
    headers: { i: Buffer.from(String(i)), bin: Buffer.from([0, 1, 2]) },
    timestamp: String(BASE_TS + i * 100),
  }
}

async function fetchAll(kafka, topic) {
  const symbol = Object.getOwnPropertySymbols(kafka).find(s => s.description === 'private:Kafka:createCluster')
  const cluster = kafka[symbol]({ metadataMaxAge: 60000, allowAutoTopicCreation: false })
  await cluster.connect()
  await cluster.addTargetTopic(topic)
  const [leader] = Object.keys(cluster.findLeaderForPartitions(topic, [0]))
  const broker = await cluster.findBroker({ nodeId: leader })
  const messages = []
  while (messages.length < COUNT) {
    const response = await broker.fetch({
      replicaId: -1,
      isolationLevel: 1,
      maxWaitTime: 100,
      minBytes: 1,
      topics: [{ topic, partitions: [{ partition: 0, fetchOffset: String(messages.length), maxBytes: 1 << 20 }] }],
    })
    const partition = response.responses[0].partitions[0]
    assert.equal(partition.errorCode, 0)
    assert.equal(partition.highWatermark, String(COUNT))
    for (const m of partition.messages) {
      if (Number(m.offset) >= messages.length) messages.push(m)
    }
  }
  await cluster.disconnect()
  return messages
}

for (const [name, codec] of Object.entries(CODECS)) {
  test(`kafkajs round trip with ${name}`, async () => {
    const broker = await startBroker()
    const kafka = new Kafka({ brokers: [broker.addr], clientId: 'strata-kafkajs-test', logLevel: logLevel.NOTHING })
    const admin = kafka.admin()
    const producer = kafka.producer()
    try {
      const topic = `js-${name}`
      await admin.connect()
      assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] }), true)

      await producer.connect()
      const sent = []
      for (let i = 0; i < COUNT; i += 20) {
        const messages = []
        for (let j = i; j < i + 20; j++) messages.push({ ...record(j), partition: 0 })
        const [meta] = await producer.send({ topic, acks: -1, compression: codec, messages })
        assert.equal(meta.errorCode, 0)
        sent.push(Number(meta.baseOffset))
      }
      assert.deepEqual(sent, [0, 20, 40])

      const got = await fetchAll(kafka, topic)
      for (let i = 0; i < COUNT; i++) {
        const want = record(i)
        const m = got[i]
        assert.equal(m.offset, String(i))
        assert.deepEqual(m.key, want.key)
        assert.deepEqual(m.value, want.value)
        assert.deepEqual(m.headers, want.headers)
        assert.equal(m.timestamp, want.timestamp)
      }

      // Past the last timestamp the broker answers -1, which KafkaJS turns
      // into the log end offset.
      for (const [ts, offset] of [[BASE_TS, '0'], [BASE_TS + 1, '1'], [BASE_TS + 2550, '26'], [BASE_TS + 99_999, String(COUNT)]]) {
        const [p] = await admin.fetchTopicOffsetsByTimestamp(topic, ts)
        assert.equal(p.offset, offset, `timestamp ${ts}`)
      }
      const [latest] = await admin.fetchTopicOffsets(topic)
      assert.deepEqual([latest.low, latest.high], ['0', String(COUNT)])
    } finally {
      await producer.disconnect()
      await admin.disconnect()
      broker.stop()
    }
  })
}

// A topic with compression.type=zstd fed by an uncompressed producer: the
// broker stores zstd batches, which KafkaJS (with the zstd codec registered
// above) reads back intact.
test('kafkajs reads back a zstd topic fed uncompressed', async () => {
  const broker = await startBroker()
  const kafka = new Kafka({ brokers: [broker.addr], clientId: 'strata-kafkajs-test', logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  const producer = kafka.producer()
  try {
    const topic = 'js-recompressed'
    await admin.connect()
    assert.equal(await admin.createTopics({
      topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'compression.type', value: 'zstd' }] }],
    }), true)
    await producer.connect()
    const messages = []
    for (let j = 0; j < COUNT; j++) messages.push({ ...record(j), partition: 0 })
    const [meta] = await producer.send({ topic, acks: -1, compression: CODECS.none, messages })
    assert.equal(meta.errorCode, 0)
    const got = await fetchAll(kafka, topic)
    for (let i = 0; i < COUNT; i++) {
      const want = record(i)
      assert.equal(got[i].offset, String(i))
      assert.deepEqual(got[i].key, want.key)
      assert.deepEqual(got[i].value, want.value)
      assert.deepEqual(got[i].headers, want.headers)
      assert.equal(got[i].timestamp, want.timestamp)
    }
  } finally {
    await producer.disconnect()
    await admin.disconnect()
    broker.stop()
  }
})

// KafkaJS's transactional producer against the real broker: a committed and
// an aborted transaction, read back by a read_committed consumer group
// (KafkaJS's default) and by a read_uncommitted one.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import kafkajs from 'kafkajs'
import { startBroker } from './harness.mjs'

const { Kafka, logLevel } = kafkajs

async function readAll(kafka, topic, readUncommitted, want) {
  const seen = []
  const consumer = kafka.consumer({
    groupId: `js-txn-${readUncommitted}-${Date.now()}`, readUncommitted,
    sessionTimeout: 10000, heartbeatInterval: 500, rebalanceTimeout: 10000,
  })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({ autoCommit: false, eachMessage: async ({ message }) => { seen.push(message.value.toString()) } })
  const deadline = Date.now() + 30000
  while (seen.length < want && Date.now() < deadline) await new Promise(r => setTimeout(r, 100))
  // Anything beyond what is expected would arrive now.
  await new Promise(r => setTimeout(r, 1000))
  await consumer.disconnect()
  return seen.sort()
}

test('kafkajs transactions commit and abort', async () => {
  const broker = await startBroker()
  const kafka = new Kafka({ brokers: [broker.addr], clientId: 'strata-txn-test', logLevel: logLevel.NOTHING })
  try {
    const topic = 'js-txn'
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] })
    await admin.disconnect()

    const producer = kafka.producer({ transactionalId: 'js-txn-producer', idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const kept = await producer.transaction()
    await kept.send({ topic, messages: [{ partition: 0, value: 'kept-0' }, { partition: 1, value: 'kept-1' }] })
    await kept.commit()
    const dropped = await producer.transaction()
    await dropped.send({ topic, messages: [{ partition: 0, value: 'dropped-0' }, { partition: 1, value: 'dropped-1' }] })
    await dropped.abort()
    await producer.disconnect()

    assert.deepEqual(await readAll(kafka, topic, false, 2), ['kept-0', 'kept-1'])
    assert.deepEqual(await readAll(kafka, topic, true, 4), ['dropped-0', 'dropped-1', 'kept-0', 'kept-1'])
  } finally {
    await broker.stop()
  }
})

// KafkaJS consumer groups against the real broker: two consumers split a
// topic's partitions, and a group resumes at its committed offsets.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import kafkajs from 'kafkajs'
import { startBroker } from './harness.mjs'

const { Kafka, logLevel } = kafkajs

async function fill(kafka, topic, partitions, perPartition) {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }] })
  await admin.disconnect()
  const producer = kafka.producer()
  await producer.connect()
  const messages = []
  for (let p = 0; p < partitions; p++) {
    for (let i = 0; i < perPartition; i++) messages.push({ partition: p, key: `${p}-${i}`, value: `${p}-${i}` })
  }
  await producer.send({ topic, acks: -1, messages })
  await producer.disconnect()
}

function consume(kafka, groupId, topic, seen, commitAfter) {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500, rebalanceTimeout: 10000 })
  const run = (async () => {
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        seen.push(`${partition}:${message.offset}`)
        if (commitAfter) {
          await consumer.commitOffsets([{ topic, partition, offset: String(Number(message.offset) + 1) }])
        }
      },
    })
  })()
  return { consumer, run }
}

async function until(what, cond, ms = 30000) {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise(r => setTimeout(r, 100))
  }
}

test('kafkajs consumers share a topic and resume at committed offsets', async () => {
  const broker = await startBroker('--set', 'group.initial.rebalance.delay.ms=500')
  const kafka = new Kafka({ brokers: [broker.addr], clientId: 'strata-kafkajs-groups', logLevel: logLevel.NOTHING })
  try {
    await fill(kafka, 'js-group', 4, 10)
    const seenA = []
    const seenB = []
    const a = consume(kafka, 'js', 'js-group', seenA, true)
    const b = consume(kafka, 'js', 'js-group', seenB, true)
    await until('both consumers got everything', () => seenA.length + seenB.length >= 40)
    await a.consumer.disconnect()
    await b.consumer.disconnect()
    const all = [...seenA, ...seenB]
    assert.equal(new Set(all).size, 40, 'every record once between the two')

    // A new member of the group starts after the committed offsets.
    await fill2(kafka)
    const seenC = []
    const c = consume(kafka, 'js', 'js-group', seenC, false)
    await until('the new records arrived', () => seenC.length >= 4)
    await new Promise(r => setTimeout(r, 1000))
    await c.consumer.disconnect()
    assert.deepEqual(seenC.map(s => s.split(':')[1]).sort(), ['10', '10', '10', '10'])
  } finally {
    broker.stop()
  }
})

async function fill2(kafka) {
  const producer = kafka.producer()
  await producer.connect()
  await producer.send({ topic: 'js-group', acks: -1, messages: [0, 1, 2, 3].map(p => ({ partition: p, value: 'more' })) })
  await producer.disconnect()
}

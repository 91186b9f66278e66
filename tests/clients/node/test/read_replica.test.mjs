// KIP-392 with KafkaJS: a consumer group member with a rackId, bootstrapped
// to a primary whose history is all in the cold tier, is sent to the read
// replica for it (preferred_read_replica) and still reads every record
// once; the two brokers' byte counters say who served them.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import kafkajs from 'kafkajs'
import { startBroker, startBrokerOn } from './harness.mjs'

const { Kafka, logLevel } = kafkajs
const TOPIC = 'history'
const RECORDS = 2000

function freePort() {
  return new Promise(res => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => res(port))
    })
  })
}

async function metric(broker, name) {
  const text = await (await fetch(`http://${broker.metricsAddr}/metrics`)).text()
  const line = text.split('\n').find(l => l.startsWith(`${name}{`) && l.includes(`topic="${TOPIC}"`))
  return line ? Number(line.split(' ').pop()) : 0
}

async function until(what, cond, ms = 30000) {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise(r => setTimeout(r, 200))
  }
}

async function readAll(addr, groupId, rackId) {
  const kafka = new Kafka({ brokers: [addr], logLevel: logLevel.NOTHING })
  const consumer = kafka.consumer({ groupId, rackId, maxWaitTimeInMs: 200, sessionTimeout: 10000, heartbeatInterval: 500 })
  const seen = new Set()
  await consumer.connect()
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true })
  await consumer.run({ eachMessage: async ({ message }) => { seen.add(message.offset) } })
  await until('every record was read', () => seen.size === RECORDS, 60000)
  await consumer.disconnect()
  return seen.size
}

test('kafkajs with a rackId reads history from the read replica', async () => {
  const port = await freePort()
  const primary = await startBroker(
    '--set', 'log.segment.bytes=65536', '--set', 'log.roll.ms=1000',
    '--set', 'log.flush.scheduler.interval.ms=200', '--set', 'remote.log.manager.task.interval.ms=200',
    '--set', 'log.retention.check.interval.ms=200', '--set', 'log.local.retention.ms=0',
    '--set', 'group.initial.rebalance.delay.ms=0',
    '--set', `remote.log.read.replica=2@127.0.0.1:${port}`)
  let replica
  try {
    const kafka = new Kafka({ brokers: [primary.addr], logLevel: logLevel.NOTHING })
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1 }] })
    await admin.disconnect()
    const producer = kafka.producer()
    await producer.connect()
    const messages = []
    for (let i = 0; i < RECORDS; i++) messages.push({ key: String(i), value: 'v'.repeat(200) })
    await producer.send({ topic: TOPIC, acks: -1, messages })
    await producer.disconnect()
    await until('the history is in the cold tier',
      async () => (await metric(primary, 'strata_partition_local_start_offset')) === RECORDS)
    replica = await startBrokerOn(`127.0.0.1:${port}`, '--read-replica',
      '--remote', `file://${primary.dataDir}/remote`, '--set', 'node.id=2',
      '--set', 'remote.log.replica.refresh.ms=200')
    await until('the replica has the history',
      async () => (await metric(replica, 'strata_partition_high_watermark')) === RECORDS)

    const report = {}
    for (const rack of ['rack-a', undefined]) {
      const [p0, r0] = [await metric(primary, 'strata_topic_bytes_out_total'), await metric(replica, 'strata_topic_bytes_out_total')]
      assert.equal(await readAll(primary.addr, `g-${rack}`, rack), RECORDS)
      const [p1, r1] = [await metric(primary, 'strata_topic_bytes_out_total'), await metric(replica, 'strata_topic_bytes_out_total')]
      report[String(rack)] = { primary: p1 - p0, replica: r1 - r0 }
    }
    console.log('kafkajs bytes served', JSON.stringify(report))
    assert.ok(report['rack-a'].replica > 0 && report['rack-a'].primary === 0, JSON.stringify(report))
    assert.ok(report.undefined.replica === 0 && report.undefined.primary > 0, JSON.stringify(report))
  } finally {
    replica?.stop()
    primary.stop()
  }
})

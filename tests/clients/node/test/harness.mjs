// Starts the real strata binary for a test, on a free port with a fresh
// data directory, as the Rust and Python harnesses do.
import { spawn } from 'node:child_process'
import { mkdtempSync, openSync, rmSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..')

export async function startBroker(...args) {
  return startBrokerOn('127.0.0.1:0', ...args)
}

// As startBroker, listening on `listen` (a port chosen in advance, for a
// read replica the primary must name before it starts).
export async function startBrokerOn(listen, ...args) {
  const bin = process.env.STRATA_BIN || join(root, 'target', 'debug', 'strata')
  if (!existsSync(bin)) throw new Error(`${bin} not found: run \`cargo build --bin strata\` first`)
  const dir = mkdtempSync(join(tmpdir(), 'strata-node-'))
  const log = openSync(join(dir, 'broker.log'), 'w')
  const proc = spawn(bin, ['--listen', listen, '--metrics-listen', '127.0.0.1:0', '--data-dir', join(dir, 'data'), ...args], {
    stdio: ['ignore', 'pipe', log],
  })
  const lines = createInterface({ input: proc.stdout })
  // Both announcements may arrive in one chunk: every line is queued as it
  // comes, so that none is missed between two reads.
  const queued = []
  const waiting = []
  lines.on('line', line => (waiting.length ? waiting.shift()(line) : queued.push(line)))
  const nextLine = () => new Promise((res, rej) => {
    if (queued.length) return res(queued.shift())
    waiting.push(res)
    proc.once('exit', code => rej(new Error(`broker exited with ${code}`)))
  })
  const first = await nextLine()
  const prefix = 'strata listening on '
  if (!first.startsWith(prefix)) throw new Error(`broker did not start: ${first}`)
  const second = await nextLine()
  return {
    addr: first.slice(prefix.length),
    metricsAddr: second.replace('strata metrics on ', ''),
    dataDir: join(dir, 'data'),
    stop() {
      proc.kill('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

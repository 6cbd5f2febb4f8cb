// A fleet of real yjs clients for bench/openloop.py, driven over stdin/stdout (one JSON
// object per line each way), so that writers and receivers can live in separate processes.
//
// stdin, in order:
//   {"clients": [{id, room, protocol: "collab"|"y-websocket", url, sceneId?, token?, receive}],
//    "syncTimeoutMs"}                       connect everything; answers {"event":"ready", syncMs}
//   {"cmd":"write", writers: [id...], gapMs, durationMs, phaseMs: {id: ms}}
//                                           open loop: answers {"event":"written", sent, lagMs}
//   {"cmd":"collect", expect: {room: {writerId: count}}, graceMs}
//                                           answers {"event":"result", latenciesMs, ...}
//   {"cmd":"close"}
//
// Open loop: a writer inserts marker i at start + phase + i·gap whatever has or has not
// arrived anywhere (a late timer sends the overdue markers at once, it never skips one).
// Each marker carries its writer and the monotonic clock at its send, which every process
// of the machine shares (process.hrtime is CLOCK_MONOTONIC), so a receiver in another
// process times it without any coordination.
import readline from 'node:readline'
import { TestClient } from '../../tests/e2e/lib/client.mjs'
import { Y, syncProtocol, encoding, decoding, WebSocket } from './deps.mjs'

const nowUs = () => Number(process.hrtime.bigint() / 1000n)
const MARKER = /~(\d+)\.(\d+)\.(\d+);/g
const REMOTE = 'remote'

// The y-websocket wire protocol (binary frames: varuint message type, then y-protocols),
// which both anchors speak; only the sync part: the benchmark sends no presence.
class YWebsocketClient {
  constructor ({ url, name }) {
    this.url = url
    this.name = name
    this.doc = new Y.Doc()
    this.text = this.doc.getText('t')
    this.synced = false
    this.online = false
    this.waiters = []
    this.doc.on('update', (update, origin) => {
      if (origin === REMOTE || !this.online) return
      const encoder = encoding.createEncoder()
      encoding.writeVarUint(encoder, 0)
      syncProtocol.writeUpdate(encoder, update)
      this.ws.send(encoding.toUint8Array(encoder))
    })
  }

  connect () {
    this.ws = new WebSocket(this.url)
    this.ws.binaryType = 'nodebuffer'
    this.closed = new Promise((resolve) => this.ws.once('close', (code) => { this.online = false; resolve(code) }))
    this.ws.on('open', () => {
      this.online = true
      const encoder = encoding.createEncoder()
      encoding.writeVarUint(encoder, 0)
      syncProtocol.writeSyncStep1(encoder, this.doc)
      this.ws.send(encoding.toUint8Array(encoder))
    })
    this.ws.on('message', (data) => {
      const decoder = decoding.createDecoder(new Uint8Array(data))
      if (decoding.readVarUint(decoder) !== 0) return // awareness, auth: not part of the load
      const encoder = encoding.createEncoder()
      encoding.writeVarUint(encoder, 0)
      const kind = syncProtocol.readSyncMessage(decoder, encoder, this.doc, REMOTE)
      if (encoding.length(encoder) > 1) this.ws.send(encoding.toUint8Array(encoder))
      if (kind === syncProtocol.messageYjsSyncStep2) {
        this.synced = true
        for (const waiter of [...this.waiters]) waiter()
      }
    })
    return new Promise((resolve, reject) => {
      this.ws.once('open', resolve)
      this.ws.once('error', reject)
    })
  }

  waitSynced (timeoutMs) {
    if (this.synced) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no sync within ${timeoutMs} ms`)), timeoutMs)
      this.waiters.push(() => { clearTimeout(timer); resolve() })
    })
  }

  close () { this.ws.close(); return this.closed }
}

function makeClient (spec) {
  if (spec.protocol === 'collab') {
    const client = new TestClient({ url: spec.url, sceneId: spec.sceneId, token: spec.token, name: `c${spec.id}`, connect: false })
    // No presence: y-protocols' Awareness starts with a local state and renews it every
    // 15 s, a broadcast the anchors' clients would not make. Cleared while offline, so
    // nothing is sent.
    client.awareness.setLocalState(null)
    return client
  }
  return new YWebsocketClient({ url: spec.url, name: `c${spec.id}` })
}

const emit = (event) => new Promise((resolve) => process.stdout.write(JSON.stringify(event) + '\n', resolve))

const fleet = []
let onArrival = () => {}

async function connectAll ({ clients, syncTimeoutMs = 60000 }) {
  const syncMs = []
  // In batches: a burst of 50 upgrades at once only measures the authorizer's queue.
  for (let start = 0; start < clients.length; start += 10) {
    await Promise.all(clients.slice(start, start + 10).map(async (spec) => {
      const client = makeClient(spec)
      const member = { spec, client, seen: new Map(), latenciesUs: [], lastArrivalUs: 0 }
      fleet.push(member)
      const began = nowUs()
      const opened = client.connect()
      client.ws.on('error', () => {}) // a drop shows as a close: counted, and as lost markers
      await opened
      await client.waitSynced(syncTimeoutMs)
      syncMs.push((nowUs() - began) / 1000)
      if (spec.receive) {
        client.text.observe((event, transaction) => {
          if (transaction.local) return
          const at = nowUs()
          for (const op of event.delta) {
            if (typeof op.insert !== 'string') continue
            for (const match of op.insert.matchAll(MARKER)) {
              const writer = Number(match[1])
              if (writer === spec.id) continue
              member.seen.set(writer, (member.seen.get(writer) || 0) + 1)
              member.latenciesUs.push(at - Number(match[3]))
              member.lastArrivalUs = at
            }
          }
          onArrival()
        })
      }
    }))
  }
  await emit({ event: 'ready', syncMs })
}

async function write ({ writers, gapMs, durationMs, phaseMs = {} }) {
  const count = Math.max(1, Math.floor(durationMs / gapMs))
  const start = nowUs() + 50_000
  const sent = {}
  let maxLagUs = 0
  let firstSendUs = 0
  await Promise.all(writers.map((id) => new Promise((resolve) => {
    const { client } = fleet.find((m) => m.spec.id === id)
    const phaseUs = (phaseMs[id] || 0) * 1000
    let next = 0
    const tick = () => {
      // Send everything that is due (a late timer never skips a marker), then sleep until
      // the next one's time: the schedule never depends on anything arriving.
      let now = nowUs()
      while (next < count && start + phaseUs + next * gapMs * 1000 <= now) {
        maxLagUs = Math.max(maxLagUs, now - (start + phaseUs + next * gapMs * 1000))
        if (!firstSendUs) firstSendUs = now
        client.text.insert(client.text.length, `~${id}.${next}.${now};`)
        next += 1
        now = nowUs()
      }
      sent[id] = next
      if (next >= count) return resolve()
      setTimeout(tick, Math.max(0, (start + phaseUs + next * gapMs * 1000 - nowUs()) / 1000))
    }
    setTimeout(tick, Math.max(0, (start + phaseUs - nowUs()) / 1000))
  })))
  await emit({ event: 'written', sent, maxLagMs: maxLagUs / 1000, firstSendUs, lastSendUs: nowUs() })
}

async function collect ({ expect, graceMs }) {
  const pending = () => fleet.some(({ spec, seen }) => spec.receive &&
    Object.entries(expect[spec.room] || {}).some(([writer, count]) => Number(writer) !== spec.id && (seen.get(Number(writer)) || 0) < count))
  if (pending()) {
    await new Promise((resolve) => {
      const timer = setTimeout(done, graceMs)
      function done () { clearTimeout(timer); onArrival = () => {}; resolve() }
      onArrival = () => { if (!pending()) done() }
    })
  }
  let expected = 0
  let received = 0
  const latenciesMs = []
  let lastArrivalUs = 0
  for (const { spec, seen, latenciesUs, lastArrivalUs: last } of fleet) {
    if (!spec.receive) continue
    for (const [writer, count] of Object.entries(expect[spec.room] || {})) {
      if (Number(writer) === spec.id) continue
      expected += count
      received += Math.min(count, seen.get(Number(writer)) || 0)
    }
    for (const us of latenciesUs) latenciesMs.push(us / 1000)
    lastArrivalUs = Math.max(lastArrivalUs, last)
  }
  const disconnected = fleet.filter((m) => !m.client.online).length
  await emit({ event: 'result', expected, received, latenciesMs, lastArrivalUs, disconnected })
}

const lines = readline.createInterface({ input: process.stdin })
const queue = []
let busy = false
lines.on('line', (line) => { queue.push(JSON.parse(line)); pump() })
lines.on('close', () => process.exit(0))

async function pump () {
  if (busy) return
  busy = true
  while (queue.length) {
    const message = queue.shift()
    try {
      if (message.clients) await connectAll(message)
      else if (message.cmd === 'write') await write(message)
      else if (message.cmd === 'collect') await collect(message)
      else if (message.cmd === 'close') {
        await Promise.race([Promise.all(fleet.map((m) => m.client.online ? m.client.close() : undefined)), new Promise((resolve) => setTimeout(resolve, 3000))])
        process.exit(0)
      }
    } catch (error) {
      await emit({ event: 'error', message: String(error && error.stack || error) })
      process.exit(1)
    }
  }
  busy = false
}

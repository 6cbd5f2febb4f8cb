// One room of real clients for bench/cost.py: the product's provider (client/src, compiled
// by bench/cost.py), real yjs and y-protocols, Node's `ws` as the WebSocket, every frame
// each way counted at the socket. Driven over stdin/stdout, one JSON object per line:
//
//   {"cmd":"open", provider, clients:[{id, url, sceneId, token, name, agent?}]}
//        connect, wait for sync, set each client's presence (name, colour, a cursor)
//        -> {"event":"ready"}
//   {"cmd":"counts"}          -> {"event":"counts", atMs, clients:[{id, in, out, connectedMs, connects}]}
//   {"cmd":"replay", trace, untilS, speed}
//        type the trace (docs/design.md §6) until trace second `untilS`, at `speed` times its
//        own pace, each agent on its client; after each transaction the typing client moves
//        its cursor to the end of the edit, as an editor binding does
//        -> {"event":"replayed", transactions, heldMs, lateMs}
//   {"cmd":"converge", timeoutMs, expected?} -> {"event":"converged", same, matches, lengths}
//   {"cmd":"close"}
//
// Counts are cumulative (the caller subtracts). "in" is what API Gateway receives (client
// frames), "out" what it sends (server frames); units are API Gateway's 32 KB billing units.
import readline from 'node:readline'
import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { pathToFileURL } from 'node:url'

const MODULES = new URL('../../client/node_modules/', import.meta.url)
// The very files the compiled provider resolves (one yjs instance in the process).
const Y = await import(new URL('yjs/dist/yjs.mjs', MODULES))
const { WebSocket } = await import(new URL('ws/wrapper.mjs', MODULES))
const BILLING_UNIT = 32 * 1024
const AGENT_CLIENT_ID = 1000 // the trace's agent N types as Yjs client 1000 + N
const COLOURS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#46f0f0', '#f032e6']

const emit = (event) => new Promise((resolve) => process.stdout.write(JSON.stringify(event) + '\n', resolve))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const direction = () => ({ frames: 0, bytes: 0, units: 0, kinds: {} })

function countFrame (side, text, kindField) {
  const bytes = Buffer.byteLength(text)
  side.frames += 1
  side.bytes += bytes
  side.units += Math.max(1, Math.ceil(bytes / BILLING_UNIT))
  let kind = '?'
  try { kind = JSON.parse(text)[kindField] ?? '?' } catch {}
  side.kinds[kind] = (side.kinds[kind] || 0) + 1
}

/** A `ws` WebSocket class that counts into `stats`: what the provider gets as its polyfill. */
function countingSocket (stats) {
  return class CountingWebSocket extends WebSocket {
    constructor (url, protocols) {
      super(url, protocols)
      this.on('open', () => { stats.openedAt = performance.now(); stats.connects += 1 })
      this.on('close', () => {
        if (stats.openedAt !== null) stats.connectedMs += performance.now() - stats.openedAt
        stats.openedAt = null
      })
      this.on('message', (data, isBinary) => { if (!isBinary) countFrame(stats.out, data.toString(), 'type') })
    }

    send (data, ...rest) {
      countFrame(stats.in, String(data), 'action')
      return super.send(data, ...rest)
    }
  }
}

const room = []

async function open ({ provider: providerPath, clients, updateThrottle = 0 }) {
  const { ApiGatewayProvider } = await import(pathToFileURL(providerPath).href)
  for (const spec of clients) {
    const stats = { in: direction(), out: direction(), connectedMs: 0, connects: 0, openedAt: null }
    // Its own random client id (the provider's presence is under it); the agent's edits,
    // made offline under 1000 + agent, arrive in it as updates it applies and sends.
    const doc = new Y.Doc()
    const provider = new ApiGatewayProvider(spec.url, spec.sceneId, doc, {
      token: spec.token,
      WebSocketPolyfill: countingSocket(stats),
      probeServer: false,
      updateThrottle
    })
    room.push({ spec, stats, doc, text: doc.getText('t'), provider })
  }
  await Promise.all(room.map(({ provider, spec }) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${spec.name}: not synced within 60 s`)), 60000)
    const check = () => { if (provider.synced && provider.connectionId !== null) { clearTimeout(timer); resolve() } }
    provider.on('sync', check)
    provider.on('participants', check)
    check()
  })))
  // Presence as an editor binding sets it: who, and where the cursor is.
  room.forEach(({ provider, spec, text }, index) => {
    provider.awareness.setLocalStateField('user', { name: spec.name, color: COLOURS[index % COLOURS.length] })
    provider.awareness.setLocalStateField('cursor', cursorAt(text, 0))
  })
  await emit({ event: 'ready' })
}

function cursorAt (text, index) {
  const at = Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, Math.min(index, text.length)))
  return { anchor: at, head: at }
}

function counts () {
  const now = performance.now()
  return {
    event: 'counts',
    atMs: now,
    clients: room.map(({ spec, stats }) => ({
      id: spec.id,
      in: stats.in,
      out: stats.out,
      connects: stats.connects,
      connectedMs: stats.connectedMs + (stats.openedAt === null ? 0 : now - stats.openedAt)
    }))
  }
}

/** Every transaction as the Yjs update its agent made, offline (docs/design.md §6). */
function prepare (trace, count) {
  const txns = trace.txns
  const agents = Array.from({ length: trace.numAgents }, (_, agent) => {
    const doc = new Y.Doc()
    doc.clientID = AGENT_CLIENT_ID + agent
    return { doc, text: doc.getText('t'), applied: new Set() }
  })
  const updates = new Array(count)
  const clockAfter = new Array(count) // the agent's own clock once the transaction is in
  for (let i = 0; i < count; i++) {
    const txn = txns[i]
    const agent = agents[txn.agent]
    const missing = []
    const stack = [...txn.parents]
    const seen = new Set()
    while (stack.length) {
      const p = stack.pop()
      if (agent.applied.has(p) || seen.has(p)) continue
      seen.add(p)
      missing.push(p)
      stack.push(...txns[p].parents)
    }
    missing.sort((a, b) => a - b)
    for (const p of missing) { Y.applyUpdate(agent.doc, updates[p]); agent.applied.add(p) }
    const before = Y.encodeStateVector(agent.doc)
    agent.doc.transact(() => {
      for (const [pos, del, ins] of txn.patches) {
        if (del > 0) agent.text.delete(pos, del)
        if (ins) agent.text.insert(pos, ins)
      }
    })
    updates[i] = Y.encodeStateAsUpdate(agent.doc, before)
    clockAfter[i] = Y.getState(agent.doc.store, agent.doc.clientID)
    agent.applied.add(i)
  }
  return { updates, clockAfter, texts: agents.map((a) => a.text.toString()) }
}

/** Trace seconds per transaction: its timestamp, never before the one it follows (the
 * trace order is causal; agents' clocks differ by up to 2 s), spread evenly over the
 * transactions of the same second. */
function schedule (txns) {
  const start = Date.parse(txns[0].time) / 1000
  const seconds = []
  let latest = 0
  for (const txn of txns) {
    latest = Math.max(latest, Date.parse(txn.time) / 1000 - start)
    seconds.push(latest)
  }
  const at = new Array(txns.length)
  for (let i = 0; i < txns.length;) {
    let j = i
    while (j < txns.length && seconds[j] === seconds[i]) j++
    for (let k = i; k < j; k++) at[k] = seconds[i] + (k - i) / (j - i)
    i = j
  }
  return at
}

async function replay ({ trace: path, untilS, speed }) {
  const trace = JSON.parse(gunzipSync(readFileSync(path)).toString())
  const at = schedule(trace.txns)
  let count = at.findIndex((s) => s > untilS)
  if (count < 0) count = at.length
  const { updates, clockAfter } = prepare(trace, count)
  const typist = new Map(room.filter((m) => m.spec.agent !== undefined && m.spec.agent !== null).map((m) => [m.spec.agent, m]))
  const began = performance.now()
  let heldMs = 0 // waiting for another agent's edit this one builds on to arrive
  let lateMs = 0 // the worst a transaction went out after its time (a busy process)
  for (let i = 0; i < count; i++) {
    const txn = trace.txns[i]
    const member = typist.get(txn.agent)
    const due = began + (at[i] * 1000) / speed
    const wait = due - performance.now()
    if (wait > 1) await sleep(wait)
    // A person types after seeing what they build on: hold the edit until the other
    // agents' transactions it follows have arrived (else Yjs would keep it pending and
    // the provider would never send it as the client's own update).
    const heldFrom = performance.now()
    while (txn.parents.some((p) => trace.txns[p].agent !== txn.agent &&
        Y.getState(member.doc.store, AGENT_CLIENT_ID + trace.txns[p].agent) < clockAfter[p])) {
      await sleep(2)
      if (performance.now() - heldFrom > 60000) throw new Error(`transaction ${i}: its parents never arrived`)
    }
    heldMs += performance.now() - heldFrom
    lateMs = Math.max(lateMs, performance.now() - due)
    Y.applyUpdate(member.doc, updates[i], 'typing')
    const [pos, , ins] = txn.patches[txn.patches.length - 1]
    member.provider.awareness.setLocalStateField('cursor', cursorAt(member.text, pos + (ins ? ins.length : 0)))
  }
  await emit({ event: 'replayed', transactions: count, heldMs, lateMs, wallMs: performance.now() - began })
}

async function converge ({ timeoutMs, expected }) {
  const deadline = performance.now() + timeoutMs
  const texts = () => room.map((m) => m.text.toString())
  const done = () => {
    const all = texts()
    return all.every((t) => t === all[0]) && (expected == null || all[0] === expected)
  }
  while (!done() && performance.now() < deadline) await sleep(100)
  const all = texts()
  await emit({
    event: 'converged',
    same: all.every((t) => t === all[0]),
    matches: expected == null ? null : all.every((t) => t === expected),
    lengths: all.map((t) => t.length)
  })
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
      if (message.cmd === 'open') await open(message)
      else if (message.cmd === 'counts') await emit(counts())
      else if (message.cmd === 'replay') await replay(message)
      else if (message.cmd === 'converge') await converge(message)
      else if (message.cmd === 'close') {
        for (const { provider } of room) provider.destroy()
        await sleep(300) // the leave frames go out before the process ends
        process.exit(0)
      }
    } catch (error) {
      await emit({ event: 'error', message: String((error && error.stack) || error) })
      process.exit(1)
    }
  }
  busy = false
}

// A bare protocol client for end-to-end tests: a real Y.Doc and y-protocols messages over
// the wire protocol (docs/design.md §2), written from the spec and independent of the product's
// provider in client/, so a bug there cannot hide a bug in the server (or the reverse).
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

export const CLIENT_FRAME_LIMIT = 30000
// Origin of changes that must not be sent back (they came from, or go straight to, the server).
export const SERVER = 'server'

const toB64 = (bytes) => Buffer.from(bytes).toString('base64')
const fromB64 = (text) => new Uint8Array(Buffer.from(text, 'base64'))

let chunkCounter = 0

/** An encoder that already holds the y-protocols message type `sync` (0). */
const syncEncoder = () => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, 0)
  return encoder
}

/** Split a message's JSON text into chunk frames of at most `limit` bytes each. */
export function chunkFrames (text, limit = CLIENT_FRAME_LIMIT) {
  if (Buffer.byteLength(text) <= limit) return [text]
  const id = `c${process.pid}-${++chunkCounter}`
  const slices = []
  let start = 0
  let size = limit - 120
  while (start < text.length) {
    let end = Math.min(text.length, start + size)
    while (Buffer.byteLength(JSON.stringify({ action: 'chunk', id, seq: 999999, total: 999999, data: text.slice(start, end) })) > limit) end -= 64
    slices.push(text.slice(start, end))
    start = end
  }
  return slices.map((data, seq) => JSON.stringify({ action: 'chunk', id, seq, total: slices.length, data }))
}

export class TestClient {
  constructor ({ url, sceneId, token, name = 'client', clientID, connect = true }) {
    this.url = url
    this.sceneId = sceneId
    this.token = token
    this.name = name
    this.doc = new Y.Doc()
    if (clientID !== undefined) this.doc.clientID = clientID
    this.text = this.doc.getText('t')
    this.awareness = new awarenessProtocol.Awareness(this.doc)
    this.messages = []
    this.errors = []
    this.synced = false
    this.online = false
    this.chunks = new Map()
    this.waiters = []
    this.doc.on('update', (update, origin) => {
      if (origin !== SERVER && this.online) this.sendUpdate(update)
    })
    this.awareness.on('update', ({ added, updated, removed }, origin) => {
      if (origin === SERVER || !this.online) return
      const changed = added.concat(updated, removed)
      this.sendAwareness(changed)
    })
    if (connect) this.connect()
  }

  connect () {
    const query = new URLSearchParams({ sceneId: this.sceneId, token: this.token })
    this.synced = false
    this.ws = new WebSocket(`${this.url}?${query}`)
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve)
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)))
      this.ws.once('error', reject)
    })
    this.closed = new Promise((resolve) => this.ws.once('close', (code) => { this.online = false; resolve(code) }))
    this.ws.on('open', () => {
      this.online = true
      this.sendSync()
    })
    this.ws.on('message', (data) => this.receive(JSON.parse(data.toString())))
    return this.opened
  }

  sendRaw (text) {
    for (const frame of chunkFrames(text)) this.ws.send(frame)
  }

  send (message) { this.sendRaw(JSON.stringify(message)) }

  sendSync () {
    const encoder = syncEncoder()
    syncProtocol.writeSyncStep1(encoder, this.doc)
    this.send({ action: 'sync', data: toB64(encoding.toUint8Array(encoder)) })
  }

  sendUpdate (update) {
    const encoder = syncEncoder()
    syncProtocol.writeUpdate(encoder, update)
    this.send({ action: 'update', data: toB64(encoding.toUint8Array(encoder)) })
  }

  sendAwareness (clients) {
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, 1)
    encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(this.awareness, clients))
    this.send({ action: 'awareness', data: toB64(encoding.toUint8Array(encoder)) })
  }

  receive (message) {
    if (message.type === 'chunk') {
      const parts = this.chunks.get(message.id) || []
      parts[message.seq] = message.data
      this.chunks.set(message.id, parts)
      if (parts.filter((p) => p !== undefined).length === message.total) {
        this.chunks.delete(message.id)
        this.receive(JSON.parse(parts.join('')))
      }
      return
    }
    this.messages.push(message)
    if (message.type === 'sync' || message.type === 'update') {
      const decoder = decoding.createDecoder(fromB64(message.data))
      decoding.readVarUint(decoder) // message type: sync
      const encoder = syncEncoder()
      const kind = syncProtocol.readSyncMessage(decoder, encoder, this.doc, SERVER)
      if (kind === syncProtocol.messageYjsSyncStep1) {
        // The server's SyncStep1: answer with what it lacks (offline edits).
        this.send({ action: 'update', data: toB64(encoding.toUint8Array(encoder)) })
      }
      if (kind === syncProtocol.messageYjsSyncStep2) this.synced = true
    } else if (message.type === 'awareness') {
      const decoder = decoding.createDecoder(fromB64(message.data))
      decoding.readVarUint(decoder)
      awarenessProtocol.applyAwarenessUpdate(this.awareness, decoding.readVarUint8Array(decoder), SERVER)
    } else if (message.type === 'error') {
      this.errors.push(message)
    }
    for (const waiter of [...this.waiters]) waiter()
  }

  /** Resolves once `predicate()` holds, re-checked on every message. */
  until (predicate, timeoutMs = 20000, what = 'condition') {
    if (predicate()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const waiter = () => {
        if (!predicate()) return
        clearTimeout(timer)
        this.waiters = this.waiters.filter((w) => w !== waiter)
        resolve()
      }
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter)
        reject(new Error(`${this.name}: timed out waiting for ${what}`))
      }, timeoutMs)
      this.waiters.push(waiter)
    })
  }

  waitSynced (timeoutMs) { return this.until(() => this.synced, timeoutMs, 'sync') }

  /** Resync and wait for its answer: the protocol has no acks; a resync repairs. */
  async resync (timeoutMs) {
    const seen = this.messages.length
    this.sendSync()
    await this.until(() => this.messages.slice(seen).some((m) => m.type === 'connected') &&
      this.messages.slice(seen).some((m) => m.type === 'sync'), timeoutMs, 'resync')
  }

  close () { this.ws.close(); return this.closed }

  /** Drop the TCP connection without a close frame, like a killed browser tab. */
  kill () { this.ws.terminate(); this.online = false }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A client of the scene the config names, signed in with `token`. */
export const clientFor = (config, token, name) =>
  new TestClient({ url: config.wsUrl, sceneId: config.sceneId, token, name })

/** The JSON the Python side passes in argv[2]: {wsUrl, sceneId, tokens: {name: jwt}, ...}. */
export function readConfig () {
  return JSON.parse(process.argv[2])
}

/** Print the report, close every client, and exit: y-protocols' Awareness keeps an
 * interval timer that would keep Node alive. */
export async function finish (result, clients) {
  // A pipe is written asynchronously: wait for the flush before exiting.
  await new Promise((resolve) => process.stdout.write(JSON.stringify(result) + '\n', resolve))
  await Promise.all(clients.map((c) => c.online ? c.close() : undefined))
  process.exit(0)
}

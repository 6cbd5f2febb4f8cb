// A session's life: late joiner, offline edits pushed on reconnect, a 1 MB paste (chunked
// both ways), and 200 updates sent without waiting. Prints what each replica ended with.
import { createHash } from 'node:crypto'
import { clientFor, readConfig, finish, sleep } from '../lib/client.mjs'

const config = readConfig()
const [tokenA, tokenB, tokenC] = config.tokens
const make = (token, name) => clientFor(config, token, name)
const result = {}

const a = make(tokenA, 'alice')
const b = make(tokenB, 'bob')
await Promise.all([a.waitSynced(), b.waitSynced()])
for (let i = 0; i < 20; i++) a.text.insert(a.text.length, `line ${i}\n`)
await b.until(() => b.text.toString() === a.text.toString(), 20000, 'first edits')

// A late joiner gets the whole document in its first sync.
const c = make(tokenC, 'carol')
await c.waitSynced()
result.lateJoinerFirstSync = c.text.toString()
result.expectedAtJoin = a.text.toString()

// Offline edits: bob drops off, both sides edit, bob comes back.
await b.close()
b.text.insert(0, 'OFFLINE EDIT BY BOB\n')
a.text.insert(a.text.length, 'alice while bob is away\n')
await sleep(300)
await b.connect()
await b.waitSynced()
const hasBoth = (x) => x.text.toString().includes('OFFLINE EDIT BY BOB') && x.text.toString().includes('alice while bob is away')
await Promise.all([a, b, c].map((x) => x.until(() => hasBoth(x), 20000, 'offline edits everywhere')))
result.afterOffline = [a, b, c].map((x) => x.text.toString())

// A 1 MB paste travels in chunks (client → server at 30,000 bytes, server → peers at 120,000).
const paste = 'INT. WRITERS ROOM - NIGHT\n'.repeat(40330).slice(0, 1_000_000)
a.text.insert(a.text.length, paste)
await Promise.all([b, c].map((x) => x.until(() => x.text.length === a.text.length, 60000, '1 MB paste')))
result.afterPaste = [a, b, c].map((x) => x.text.length)

// 200 updates sent back to back, without waiting for anything.
const before = a.text.length
for (let i = 0; i < 200; i++) a.text.insert(before + i, String.fromCharCode(65 + (i % 26)))
await Promise.all([b, c].map((x) => x.until(() => x.text.length === before + 200, 60000, '200 updates')))
result.burst = [a, b, c].map((x) => x.text.toString().slice(before))
// Digests, not 1 MB texts: the report travels through a pipe.
result.final = [a, b, c].map((x) => createHash('sha256').update(x.text.toString()).digest('hex'))
result.errors = [a, b, c].flatMap((x) => x.errors)
await finish(result, [a, b, c])

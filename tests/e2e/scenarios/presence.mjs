// Presence: cursors appear for the others; a client killed without a close frame is
// cleaned up and its cursor disappears; nobody can remove somebody else's cursor.
import * as encoding from 'lib0/encoding'
import { clientFor, readConfig, finish, sleep } from '../lib/client.mjs'

const config = readConfig()
const [tokenA, tokenB, tokenC] = config.tokens
const make = (token, name) => clientFor(config, token, name)
const result = {}
const a = make(tokenA, 'alice')
const b = make(tokenB, 'bob')
const c = make(tokenC, 'carol')
await Promise.all([a, b, c].map((x) => x.waitSynced()))
a.awareness.setLocalStateField('user', { name: 'Alice', cursor: 1 })
b.awareness.setLocalStateField('user', { name: 'Bob', cursor: 2 })
c.awareness.setLocalStateField('user', { name: 'Carol', cursor: 3 })
const sees = (x, who) => [...x.awareness.getStates().values()].some((s) => s.user?.name === who)
await Promise.all([a, b].map((x) => x.until(() => sees(x, 'Carol'), 20000, 'carol cursor')))
await a.until(() => sees(a, 'Bob'), 20000, 'bob cursor')

// Bob forges a removal of Alice's state: her client id, a far higher clock, state null.
const forged = encoding.createEncoder()
encoding.writeVarUint(forged, 1)
encoding.writeVarUint(forged, a.doc.clientID)
encoding.writeVarUint(forged, a.awareness.meta.get(a.doc.clientID).clock + 1000)
encoding.writeVarString(forged, 'null')
const encoder = encoding.createEncoder()
encoding.writeVarUint(encoder, 1)
encoding.writeVarUint8Array(encoder, encoding.toUint8Array(forged))
b.send({ action: 'awareness', data: Buffer.from(encoding.toUint8Array(encoder)).toString('base64') })
await sleep(1000)
result.carolSeesAliceAfterForgery = sees(c, 'Alice')

// Carol's tab is killed: no close frame. Her cursor must disappear for the others.
const participantsBefore = a.messages.filter((m) => m.type === 'participant-left').length
c.kill()
await Promise.all([a, b].map((x) => x.until(() => !sees(x, 'Carol'), 20000, 'carol cursor gone')))
await a.until(() => a.messages.filter((m) => m.type === 'participant-left').length > participantsBefore, 20000, 'left')
result.carolGoneForAlice = !sees(a, 'Carol')
result.carolGoneForBob = !sees(b, 'Carol')
result.leftEvents = a.messages.filter((m) => m.type === 'participant-left').map((m) => m.participant.userName)
// A fresh joiner sees Alice and Bob, not Carol.
const d = make(config.tokens[3], 'dave')
await d.waitSynced()
await d.until(() => sees(d, 'Alice') && sees(d, 'Bob'), 20000, 'present states')
result.daveSees = [...d.awareness.getStates().values()].map((s) => s.user?.name).filter(Boolean).sort()
result.errors = [a, b, d].flatMap((x) => x.errors)
await finish(result, [a, b, d])

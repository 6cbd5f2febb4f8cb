// A session through a cache outage (issue 9 item 2), driven by the test: at each phase the
// scenario prints {"phase": name, ...} and waits for "go" on stdin, while the test crashes
// or restarts the stack's redis-server.
//
//   cold     the cache has been down since the stack started: alice connects and types
//            (the test then starts Redis, empty);
//   before   bob joins, both type and see each other's cursor (the test crashes Redis);
//   outage   both keep typing; carol joins and must get the whole scene; bob leaves and
//            the others must be told; bob types offline (the test restarts Redis, empty);
//   done     alice and carol type, bob comes back, dave joins and must get everything,
//            everyone types and sees everyone's cursor again.
//
// Every marker typed is recorded; the report lets the test check that every replica
// ends identical and holds every one of them.
import * as readline from 'node:readline'
import { clientFor, readConfig, finish, sleep } from '../lib/client.mjs'

const config = readConfig()
const WAIT_MS = 30000
const stdin = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]()

/** Tell the test where we are, then wait for its "go". */
async function phase (name, data = {}) {
  await new Promise((resolve) => process.stdout.write(JSON.stringify({ phase: name, ...data }) + '\n', resolve))
  const { value, done } = await stdin.next()
  if (done || value.trim() !== 'go') throw new Error(`after phase ${name} the test said ${JSON.stringify(value)}`)
}

const names = { alice: 'Alice', bob: 'Bob', carol: 'Carol', dave: 'Dave' }
const make = (who) => {
  const client = clientFor(config, config.tokens[who], who)
  client.displayName = names[who]
  return client
}

const typed = [] // every marker typed, in every phase, by everyone

/** `count` markers typed one by one at the end of the text, at a typist's pace. */
async function type (client, phaseName, count) {
  for (let i = 0; i < count; i++) {
    const marker = `<${client.name}:${phaseName}:${i}>`
    client.text.insert(client.text.length, marker)
    typed.push(marker)
    await sleep(10)
  }
}

const missing = (client, markers) => {
  const text = client.text.toString()
  return markers.filter((m) => !text.includes(m))
}

/** Wait until every client holds every marker typed so far (but `unsent` ones). */
async function converge (clients, what, unsent = []) {
  const expected = typed.filter((m) => !unsent.includes(m))
  try {
    await Promise.all(clients.map((x) => x.until(() => missing(x, expected).length === 0, WAIT_MS, `${what}: every marker`)))
  } catch (error) {
    const lacks = clients.map((x) => `${x.name} lacks ${JSON.stringify(missing(x, expected))}`)
    throw new Error(`${error.message}; ${lacks.join('; ')}`)
  }
}

/** Wait for the first sync of a late joiner; report what it lacked at that moment. */
async function join (who, what) {
  const expected = [...typed]
  const client = make(who)
  await client.waitSynced(WAIT_MS)
  const connected = client.messages.find((m) => m.type === 'connected')
  return {
    client,
    report: {
      missingAtFirstSync: missing(client, expected),
      expectedAtFirstSync: expected.length,
      participantsAtJoin: connected.participants.map((p) => p.userName).sort(),
      what
    }
  }
}

const sees = (x, who, tag) => [...x.awareness.getStates().entries()].some(
  ([id, state]) => id !== x.doc.clientID && state.user?.name === who && state.user?.phase === tag)

/** Every client moves its cursor until each sees every other's, tagged `tag`. Moves are
 * resent because an execution environment skips the cache (and drops presence) for the
 * rest of its breaker's cooldown; an editor's cursor moves with every keystroke anyway. */
async function showCursors (clients, tag) {
  const everyoneSeesEveryone = () => clients.every((x) => clients.every((y) => y === x || sees(x, y.displayName, tag)))
  const deadline = Date.now() + WAIT_MS
  let moves = 0
  while (!everyoneSeesEveryone()) {
    if (Date.now() > deadline) {
      const seen = clients.map((x) => `${x.name} sees ${clients.filter((y) => y !== x && sees(x, y.displayName, tag)).map((y) => y.name)}`)
      throw new Error(`cursors (${tag}) not seen after ${moves} moves: ${seen.join('; ')}`)
    }
    moves++
    for (const x of clients) x.awareness.setLocalStateField('user', { name: x.displayName, phase: tag, cursor: moves })
    await clients[0].until(everyoneSeesEveryone, 300).catch(() => {}) // or the next move
  }
  return moves
}

const leftNames = (client) => client.messages.filter((m) => m.type === 'participant-left')
  .flatMap((m) => (m.participants || [m.participant]).map((p) => p.userName))

const result = { lateJoiners: {}, cursorMoves: {} }

// cold: no cache at all since the stack started.
const a = make('alice')
await a.waitSynced(WAIT_MS)
await type(a, 'cold', 5)
await phase('cold')

// before: the cache is up (and empty); bob joins.
const b = make('bob')
await b.waitSynced(WAIT_MS)
await Promise.all([type(a, 'before', 10), type(b, 'before', 10)])
await converge([a, b], 'before')
result.cursorMoves.before = await showCursors([a, b], 'before')
await phase('before')

// outage: the cache is gone. Enough typing that the durable log passes its compaction
// threshold (the test stack's LOG_TAIL_LIMIT is 80) even when it was compacted just before
// the outage: 90 updates. (With 60, carol's sync compacted only when earlier phases had
// left 20 in the log; otherwise only the appends' chance, about 1 in 80 each, did.)
await Promise.all([type(a, 'outage', 45), type(b, 'outage', 45)])
await converge([a, b], 'outage: broadcast')
const joinedCarol = await join('carol', 'during the outage')
const c = joinedCarol.client
result.lateJoiners.carol = joinedCarol.report
await Promise.all([type(a, 'outage2', 10), type(b, 'outage2', 10), type(c, 'outage', 10)])
await converge([a, b, c], 'outage: with carol')
const bobConnectionId = b.messages.filter((m) => m.type === 'connected').at(-1).connectionId
await b.close()
await Promise.all([a, c].map((x) => x.until(() => leftNames(x).includes('Bob'), WAIT_MS, 'participant-left for bob')))
result.leftSeenBy = { alice: leftNames(a), carol: leftNames(c) }
const offline = typed.length
await type(b, 'offline', 3) // bob's tab, offline: pushed when he reconnects
const bobOffline = typed.slice(offline)
await phase('outage', { bobConnectionId })

// after: the cache is back, empty.
await Promise.all([type(a, 'after', 10), type(c, 'after', 10)])
await converge([a, c], 'after restart', bobOffline)
await b.connect()
await b.waitSynced(WAIT_MS)
await converge([a, b, c], 'bob back, offline edits pushed')
const joinedDave = await join('dave', 'after the restart')
const d = joinedDave.client
result.lateJoiners.dave = joinedDave.report
const everyone = [a, b, c, d]
await Promise.all(everyone.map((x) => type(x, 'last', 5)))
await converge(everyone, 'last')
result.cursorMoves.after = await showCursors(everyone, 'after')

result.typed = typed
result.texts = Object.fromEntries(everyone.map((x) => [x.name, x.text.toString()]))
result.errors = everyone.flatMap((x) => x.errors.map((e) => ({ client: x.name, ...e })))
await finish({ phase: 'done', ...result }, everyone)

// Replays a concurrent editing trace (josephg/editing-traces) through the system as
// docs/design.md §6 describes: every transaction becomes its Yjs update offline, on a doc per agent
// brought to exactly the state of the transaction's parents; then one client per agent
// sends its own transactions' updates in trace order. Consecutive transactions of one
// agent travel as one message (the same bytes a client batching its typing would send).
import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import * as Y from 'yjs'
import { SERVER, clientFor, readConfig, finish, sleep } from '../lib/client.mjs'

const config = readConfig()
const trace = JSON.parse(gunzipSync(readFileSync(config.trace)).toString())
const txns = trace.txns

const agents = Array.from({ length: trace.numAgents }, (_, agent) => {
  const doc = new Y.Doc()
  doc.clientID = 1000 + agent
  return { doc, text: doc.getText('t'), applied: new Set() }
})
const updates = new Array(txns.length)

function bringToParents (agent, parents) {
  // Depth-first over the ancestors the agent lacks; applying in index order keeps causality.
  const missing = []
  const stack = [...parents]
  const seen = new Set()
  while (stack.length) {
    const i = stack.pop()
    if (agent.applied.has(i) || seen.has(i)) continue
    seen.add(i)
    missing.push(i)
    stack.push(...txns[i].parents)
  }
  missing.sort((a, b) => a - b)
  for (const i of missing) {
    Y.applyUpdate(agent.doc, updates[i])
    agent.applied.add(i)
  }
}

txns.forEach((txn, i) => {
  const agent = agents[txn.agent]
  bringToParents(agent, txn.parents)
  const before = Y.encodeStateVector(agent.doc)
  agent.doc.transact(() => {
    for (const [pos, del, ins] of txn.patches) {
      if (del > 0) agent.text.delete(pos, del)
      if (ins) agent.text.insert(pos, ins)
    }
  })
  updates[i] = Y.encodeStateAsUpdate(agent.doc, before)
  agent.applied.add(i)
})

const clients = config.tokens.slice(0, trace.numAgents).map((token, agent) => clientFor(config, token, `agent${agent}`))
await Promise.all(clients.map((c) => c.waitSynced()))

const batches = []
for (let i = 0; i < txns.length;) {
  const agent = txns[i].agent
  const run = []
  while (i < txns.length && txns[i].agent === agent && run.length < 64) run.push(updates[i++])
  batches.push({ agent, update: Y.mergeUpdates(run) })
}
let inFlight = 0
for (const { agent, update } of batches) {
  Y.applyUpdate(clients[agent].doc, update, SERVER) // not auto-sent: sent below, once
  clients[agent].sendUpdate(update)
  if (++inFlight % 20 === 0) await sleep(30) // pace like typists do, not a flood
}
await sleep(2000)
for (let round = 0; round < 2; round++) {
  await Promise.all(clients.map((c) => c.resync(60000)))
  await sleep(500)
}
await finish({
  batches: batches.length,
  transactions: txns.length,
  expected: trace.endContent,
  texts: clients.map((c) => c.text.toString()),
  errors: clients.flatMap((c) => c.errors)
}, clients)

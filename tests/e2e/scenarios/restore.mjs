// Three clients type into a scene; a version is taken through the HTTP API; they type on,
// and keep typing while the version is restored through the HTTP API; after the restore
// each types markers of its own. Prints what every replica holds, the version's content,
// and what was typed when, for the Python side to check against the server.
//
// Markers: [p<i>:<n>] before the version, [d<i>:<n>] while the restore is in flight (only
// inserts, at either end: what the restore did not see survives it), [a<i>:<n>] after the
// client saw the restore's `version` message.
import { clientFor, readConfig, finish, sleep } from '../lib/client.mjs'

const config = readConfig()
const clients = config.tokens.map((token, i) => clientFor(config, token, `writer${i}`))
await Promise.all(clients.map((c) => c.waitSynced()))
const api = (path, init = {}) => fetch(`${config.httpUrl}/scenes/${config.sceneId}${path}`, {
  ...init,
  headers: { authorization: `Bearer ${config.tokens[0]}`, ...(init.headers || {}) }
})

async function typeFor (ms, phase, { deletes }) {
  const until = Date.now() + ms
  const typed = clients.map(() => [])
  await Promise.all(clients.map(async (client, i) => {
    let n = 0
    while (Date.now() < until) {
      const length = client.text.length
      if (deletes && length > 20 && Math.random() < 0.25) {
        client.text.delete(Math.floor(Math.random() * (length - 3)), 1 + Math.floor(Math.random() * 3))
      } else {
        const marker = `[${phase}${i}:${n++}]`
        // Without deletes, markers go at either end: never inside another marker, so
        // each survives whole, whoever typed next to it at the same moment.
        const at = deletes ? Math.floor(Math.random() * (length + 1)) : (Math.random() < 0.5 ? 0 : length)
        client.text.insert(at, marker)
        typed[i].push(marker)
      }
      await sleep(15 + Math.random() * 25)
    }
  }))
  return typed
}

async function settle () {
  await sleep(500)
  await Promise.all(clients.map((c) => c.resync()))
}

// Before the version: text with deletions, and a map.
clients[0].doc.getMap('meta').set('title', 'Draft 1')
await typeFor(1500, 'p', { deletes: true })
await settle()
const created = await api('/versions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ label: 'table read' }) })
const version = await created.json()
const atVersion = clients[0].text.toString()

// After it: more typing and a changed title, then the restore while all three type.
clients[1].doc.getMap('meta').set('title', 'Draft 2')
clients[2].doc.getMap('meta').set('scratch', 42)
await typeFor(1000, 'x', { deletes: true })
await settle()
const beforeRestore = clients[0].text.toString()
const during = typeFor(800, 'd', { deletes: false })
await sleep(300)
const restored = await api(`/versions/${version.versionId}/restore`, { method: 'POST' })
const restoreAnswer = await restored.json()
const typedDuring = await during

// After each client saw the restore: markers of its own.
await Promise.all(clients.map((c) => c.until(() => c.messages.some((m) => m.type === 'version' && m.event === 'restored'), 20000, 'the restore')))
const typedAfter = await typeFor(600, 'a', { deletes: false })
await settle()
await settle()

await finish({
  created: { status: created.status, version },
  restored: { status: restored.status, answer: restoreAnswer },
  atVersion,
  beforeRestore,
  typedDuring: typedDuring.flat(),
  typedAfter: typedAfter.flat(),
  texts: clients.map((c) => c.text.toString()),
  meta: clients.map((c) => c.doc.getMap('meta').toJSON()),
  told: clients.map((c) => c.messages.filter((m) => m.type === 'version').map((m) => m.event)),
  errors: clients.flatMap((c) => c.errors)
}, clients)

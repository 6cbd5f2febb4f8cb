// N clients edit one Y.Text concurrently for a while; after a resync round every replica
// must hold the same text. Prints {texts: [...]} for the Python side to compare with the
// server's state.
import { clientFor, readConfig, finish, sleep } from '../lib/client.mjs'

const config = readConfig()
const clients = config.tokens.map((token, i) => clientFor(config, token, `writer${i}`))
await Promise.all(clients.map((c) => c.waitSynced()))

const until = Date.now() + (config.durationMs ?? 3000)
let edits = 0
await Promise.all(clients.map(async (client, i) => {
  let n = 0
  while (Date.now() < until) {
    const length = client.text.length
    if (length > 20 && Math.random() < 0.25) {
      client.text.delete(Math.floor(Math.random() * (length - 3)), 1 + Math.floor(Math.random() * 3))
    } else {
      client.text.insert(Math.floor(Math.random() * (length + 1)), `[${i}:${n++}]`)
    }
    edits++
    await sleep(20 + Math.random() * 30)
  }
}))
await sleep(1000)
for (let round = 0; round < 2; round++) {
  await Promise.all(clients.map((c) => c.resync()))
  await sleep(500)
}
await finish({ edits, texts: clients.map((c) => c.text.toString()), errors: clients.flatMap((c) => c.errors) }, clients)

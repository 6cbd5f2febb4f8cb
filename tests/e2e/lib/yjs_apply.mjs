// Applies updates with real Yjs, many cases in one process (the fuzz test sends thousands):
// stdin: one JSON line per case {"id", "base": "<base64 or empty>", "update": "<base64>"};
// stdout: one JSON line per case {"id", "fresh", "based", "read"}, each null or the error.
//
// `fresh`: Y.applyUpdate on a new doc that, like a browser's provider, listens to 'update'
//   (so Yjs re-encodes what it integrated), then encodeStateAsUpdate and applying that to
//   another new doc (what this client would send a peer or the server).
// `based`: the same on a doc already holding `base` (the state the update was made on).
// `read`: reading the usual roots as the app would (toDelta, toJSON, toString) after that;
//   reported, since an app reading a root as another type than it was written is not a
//   decoding problem.
import { createInterface } from 'node:readline'
import * as Y from 'yjs'

const fromB64 = (text) => new Uint8Array(Buffer.from(text, 'base64'))
const message = (error) => `${error && error.constructor && error.constructor.name}: ${error && error.message}`
console.error = () => {} // Yjs logs (not throws) about re-integrated subdocuments

function newDoc () {
  const doc = new Y.Doc()
  doc.on('update', () => {})
  return doc
}

function applyAll (doc, update) {
  Y.applyUpdate(doc, update)
  const state = Y.encodeStateAsUpdate(doc)
  Y.applyUpdate(newDoc(), state)
  Y.encodeStateVector(doc)
}

function read (doc) {
  doc.getText('text').toDelta()
  doc.getText('t').toString()
  doc.getMap('map').toJSON()
  doc.getArray('array').toJSON()
  const xml = doc.getXmlFragment('xml')
  xml.toJSON()
  xml.toString()
}

function attempt (fn) {
  try {
    fn()
    return null
  } catch (error) {
    return message(error)
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
const out = []
for await (const line of lines) {
  if (!line) continue
  const { id, base, update } = JSON.parse(line)
  const bytes = fromB64(update)
  const result = { id, fresh: null, based: null, read: null }
  const fresh = newDoc()
  result.fresh = attempt(() => applyAll(fresh, bytes))
  if (base) {
    const based = newDoc()
    Y.applyUpdate(based, fromB64(base)) // a state Yjs made itself: must not throw
    result.based = attempt(() => applyAll(based, bytes))
    if (!result.based) result.read = attempt(() => read(based))
  }
  if (!result.fresh && !result.read) result.read = attempt(() => read(fresh))
  out.push(JSON.stringify(result))
  if (out.length >= 500) {
    process.stdout.write(out.join('\n') + '\n')
    out.length = 0
  }
}
process.stdout.write(out.length ? out.join('\n') + '\n' : '')

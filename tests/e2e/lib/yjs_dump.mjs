// What restore_check.mjs and restore_attack.mjs share: base64, a dump of any Yjs value that
// keeps what toJSON() loses (a Y.Text is its toDelta() with embeds dumped too, types are
// tagged, Uint8Array, BigInt, undefined, -0 and non-finite numbers are told apart), roots
// read in a kind, and docs built from updates.
import * as Y from 'yjs'

export const b64 = (bytes) => Buffer.from(bytes).toString('base64')
export const fromB64 = (text) => new Uint8Array(Buffer.from(text, 'base64'))

export function dump (value) {
  if (value instanceof Y.XmlText) return { xmltext: dumpDelta(value.toDelta()), attrs: dump(value.getAttributes()) }
  if (value instanceof Y.Text) return { text: dumpDelta(value.toDelta()) }
  if (value instanceof Y.XmlElement) {
    return { element: value.nodeName, attrs: dump(value.getAttributes()), children: value.toArray().map(dump) }
  }
  if (value instanceof Y.XmlFragment) return { fragment: value.toArray().map(dump) }
  if (value instanceof Y.Map) return { map: dumpEntries([...value.entries()]) }
  if (value instanceof Y.Array) return { array: value.toArray().map(dump) }
  if (value instanceof Y.Doc) return { doc: value.guid }
  if (value instanceof Uint8Array) return { bytes: [...value] }
  if (typeof value === 'bigint') return { bigint: String(value) }
  if (value === undefined) return { undefined: true }
  if (typeof value === 'number' && (!Number.isFinite(value) || Object.is(value, -0))) return { number: String(Object.is(value, -0) ? '-0' : value) }
  if (Array.isArray(value)) return value.map(dump)
  if (value !== null && typeof value === 'object') return { object: dumpEntries(Object.entries(value)) }
  return value
}

const dumpEntries = (entries) => entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => [k, dump(v)])
const dumpDelta = (delta) => delta.map((op) => ({ insert: typeof op.insert === 'string' ? op.insert : dump(op.insert), attributes: op.attributes ? dump(op.attributes) : null }))

const getters = { text: 'getText', map: 'getMap', array: 'getArray', xml: 'getXmlFragment' }
export const root = (doc, name, kind) => doc[getters[kind]](name)

export function dumpRoots (doc, kinds) {
  const out = {}
  for (const [name, kind] of Object.entries(kinds)) out[name] = dump(root(doc, name, kind))
  return out
}

export function docOf (...updates) {
  const doc = new Y.Doc()
  doc.on('update', () => {}) // as a provider listens: Yjs re-encodes what it integrated
  for (const update of updates) if (update.length) Y.applyUpdate(doc, update)
  return doc
}

export function attempt (fn) {
  try {
    return [fn(), null]
  } catch (error) {
    return [null, `${error.constructor.name}: ${error.message}`]
  }
}

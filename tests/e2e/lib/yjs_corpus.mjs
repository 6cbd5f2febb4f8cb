// Writes updates that Yjs itself produces, one JSON line each, so the server's strict
// reader (functions/collab/yjs_format.py) can be checked against the real library:
//   {"name": "...", "base": "<base64 state before, or empty>", "update": "<base64>"}
// `base` is the state the update was made on top of (the fuzz test applies mutations of
// the update to a fresh doc and to a doc holding `base`).
//
// Usage: node yjs_corpus.mjs '{"types": true, "traces": ["path.json.gz", ...], "baseLimit": 200}'
// Every Yjs type and content kind is covered: Text with formatting and embeds, Map with
// every value kind, Array, XmlFragment/XmlElement/XmlText, XmlHook (apart), subdocuments, deletions
// (with and without GC), legacy JSON content, merged states, mergeUpdates (with the Skip
// structs it writes for gaps), diffs and the V2 -> V1 conversion.
import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import * as Y from 'yjs'

const config = JSON.parse(process.argv[2] || '{}')
const out = []
const b64 = (bytes) => Buffer.from(bytes).toString('base64')
const emit = (name, update, base = new Uint8Array()) => {
  out.push(JSON.stringify({ name, base: b64(base), update: b64(update) }))
  if (out.length >= 2000) flush()
}
const flush = () => {
  if (out.length) process.stdout.write(out.join('\n') + '\n')
  out.length = 0
}

// Fixed uint32 client ids (the size browsers use), so a seeded fuzz run is repeatable.
let nextClientID = 3000000000

// Records every update of `doc` with the state before it, then the merged forms.
function record (name, build, { gc = true } = {}) {
  const doc = new Y.Doc({ gc })
  doc.clientID = nextClientID++
  const updates = []
  let before = Y.encodeStateAsUpdate(doc)
  doc.on('update', (update) => {
    updates.push(update)
    emit(`${name}/update${updates.length}`, update, before)
    before = Y.encodeStateAsUpdate(doc)
  })
  const middle = build(doc)
  const state = Y.encodeStateAsUpdate(doc)
  emit(`${name}/state`, state)
  emit(`${name}/stateV2toV1`, Y.convertUpdateFormatV2ToV1(Y.encodeStateAsUpdateV2(doc)))
  if (updates.length > 1) {
    emit(`${name}/mergeUpdates`, Y.mergeUpdates(updates))
    // Every other update of the same client: mergeUpdates writes Skip structs for gaps.
    emit(`${name}/mergeUpdatesWithGaps`, Y.mergeUpdates(updates.filter((_, i) => i % 2 === 0)))
    const half = Y.mergeUpdates(updates.slice(0, updates.length >> 1))
    emit(`${name}/diffUpdate`, Y.diffUpdate(state, Y.encodeStateVectorFromUpdate(half)), half)
  }
  if (middle) emit(`${name}/diffFromMiddle`, Y.encodeStateAsUpdate(doc, middle.sv), middle.state)
  return doc
}

const mark = (doc) => ({ sv: Y.encodeStateVector(doc), state: Y.encodeStateAsUpdate(doc) })

function types () {
  record('text', (doc) => {
    const text = doc.getText('text')
    text.insert(0, 'INT. KITCHEN - NIGHT\n')
    text.insert(5, 'small ', { bold: true })
    text.format(0, 4, { italic: true, color: '#ff0000', link: { href: 'https://x.test', n: 1 } })
    const middle = mark(doc)
    text.insertEmbed(3, { image: 'https://x.test/a.png', width: 300 })
    text.insertEmbed(1, new Y.Map([['k', 'embedded type']]))
    text.insert(text.length, 'émoji 😀 ok 𝄞 中文 ')
    text.insert(2, '\ud800 lone high, lone low \udc00')
    text.format(2, 10, { bold: null }) // formatting removed: a null attribute
    text.delete(4, 6)
    text.applyDelta([{ retain: 2 }, { insert: 'delta', attributes: { u: true } }, { delete: 1 }])
    return middle
  })
  record('map', (doc) => {
    const map = doc.getMap('map')
    map.set('int', 42)
    map.set('negative', -7)
    map.set('bigSafe', Number.MAX_SAFE_INTEGER)
    map.set('float', 3.14159)
    map.set('float32able', 0.5)
    map.set('nan', NaN)
    map.set('inf', -Infinity)
    map.set('string', 'scene heading')
    map.set('empty', '')
    map.set('true', true)
    map.set('false', false)
    map.set('null', null)
    map.set('undefined', undefined)
    map.set('bigint', 1234567890123456789n)
    map.set('array', [1, 'two', [3, [4]], { five: 5 }, null, true])
    map.set('object', { a: 1, nested: { b: [1, 2, { c: 'd' }] }, '': 'empty key' })
    map.set('bytes', new Uint8Array([0, 1, 2, 255]))
    const middle = mark(doc)
    map.set('nestedMap', new Y.Map([['inner', 1]]))
    map.set('nestedArray', Y.Array.from([1, 2, 3]))
    map.set('nestedText', new Y.Text('inner text'))
    map.set('nestedXml', new Y.XmlFragment())
    map.set('int', 43) // an overwrite: origin and parentSub
    map.delete('string')
    map.get('nestedMap').set('deeper', new Y.Map([['x', [1, { y: 2 }]]]))
    return middle
  })
  record('array', (doc) => {
    const array = doc.getArray('array')
    array.insert(0, [1, 2, 3, 'four', { five: 5 }, [6], null, new Uint8Array([7])])
    const middle = mark(doc)
    array.push([new Y.Map([['m', 1]]), new Y.Array(), new Y.Text('t')])
    array.unshift(['first'])
    array.delete(2, 3)
    array.insert(1, [true, false, 1.5])
    array.get(array.length - 2).insert(0, [[1, 2], 'x'])
    return middle
  })
  record('xml', (doc) => {
    const fragment = doc.getXmlFragment('xml')
    const element = new Y.XmlElement('scene-heading')
    element.setAttribute('data-id', 'h1')
    element.setAttribute('class', 'big')
    const text = new Y.XmlText('INT. HOUSE')
    element.insert(0, [text])
    fragment.insert(0, [element, new Y.XmlText('plain')])
    const middle = mark(doc)
    text.format(0, 3, { bold: true })
    text.insertEmbed(1, { embed: 1 })
    element.setAttribute('class', 'bigger')
    element.removeAttribute('data-id')
    const nested = new Y.XmlElement('dialogue')
    nested.insert(0, [new Y.XmlText('Hello')])
    element.insertAfter(text, [nested])
    fragment.delete(1, 1)
    return middle
  })
  // XmlHook is kept apart: the server refuses it (yjs_format.py says why).
  record('xmlhook', (doc) => {
    const hook = new Y.XmlHook('custom-hook')
    doc.getXmlFragment('xml').insert(0, [hook])
    hook.set('hookKey', 'hook value')
    return null
  })
  record('subdocs', (doc) => {
    const map = doc.getMap('map')
    map.set('plain', new Y.Doc({ guid: 'sub-plain' }))
    map.set('options', new Y.Doc({ guid: 'sub-options', gc: false, autoLoad: true, meta: { title: 'Act 1', n: [1] } }))
    const middle = mark(doc)
    doc.getArray('array').insert(0, [new Y.Doc({ guid: 'sub-in-array', meta: 'string meta' })])
    map.delete('plain')
    return middle
  })
  // Deleting types and content: GC structs (gc on) or kept Deleted content (gc off).
  for (const gc of [true, false]) {
    record(`deletions-gc-${gc}`, (doc) => {
      const map = doc.getMap('map')
      const list = new Y.Array()
      map.set('list', list)
      list.insert(0, [new Y.Text('gone'), new Y.Map([['k', 1]]), 'x', 'y'])
      map.set('text', new Y.Text('to be deleted'))
      const middle = mark(doc)
      list.delete(0, 3)
      map.delete('text')
      map.delete('list')
      doc.getText('text').insert(0, 'abcdef')
      doc.getText('text').delete(1, 4)
      return middle
    }, { gc })
  }
  // Legacy JSON content (ref 2): Yjs 13 still reads it; made with Yjs's own Item API.
  record('legacy-json', (doc) => {
    const array = doc.getArray('array')
    array.insert(0, ['before'])
    Y.transact(doc, (transaction) => {
      const clock = Y.getState(doc.store, doc.clientID)
      const left = array._start
      const content = new Y.ContentJSON([1, 'two', { three: [3] }, null, undefined])
      const item = new Y.Item(Y.createID(doc.clientID, clock), left, left && left.lastId, null, null, array, null, content)
      item.integrate(transaction, 0)
    })
    return null
  })
  // Several clients: concurrent edits merged in both orders.
  const a = new Y.Doc()
  const b = new Y.Doc()
  a.clientID = 1
  b.clientID = 2
  a.getText('text').insert(0, 'shared ')
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
  const base = Y.encodeStateAsUpdate(a)
  a.getText('text').insert(0, 'from a ')
  b.getText('text').insert(7, 'from b ')
  b.getMap('map').set('b', 'value')
  const fromA = Y.encodeStateAsUpdate(a, Y.encodeStateVectorFromUpdate(base))
  const fromB = Y.encodeStateAsUpdate(b, Y.encodeStateVectorFromUpdate(base))
  emit('two-clients/a', fromA, base)
  emit('two-clients/b', fromB, base)
  emit('two-clients/merged', Y.mergeUpdates([base, fromA, fromB]))
  Y.applyUpdate(a, fromB)
  emit('two-clients/state', Y.encodeStateAsUpdate(a))
  emit('empty/state', Y.encodeStateAsUpdate(new Y.Doc()))
}

// A sequential trace: one update per transaction, on one doc.
function sequential (name, trace, baseLimit) {
  const doc = new Y.Doc()
  doc.clientID = 7
  const text = doc.getText('t')
  let i = 0
  for (const txn of trace.txns) {
    const before = i < baseLimit ? Y.encodeStateAsUpdate(doc) : undefined
    let update = null
    const take = (u) => { update = u }
    doc.on('update', take)
    doc.transact(() => {
      for (const [pos, del, ins] of txn.patches) {
        if (del > 0) text.delete(pos, del)
        if (ins) text.insert(pos, ins)
      }
    })
    doc.off('update', take)
    if (update) emit(`${name}/txn${i}`, update, before)
    i++
  }
  emit(`${name}/state`, Y.encodeStateAsUpdate(doc))
}

// A concurrent trace: each transaction made on a doc brought to its parents (trace.mjs).
function concurrent (name, trace, baseLimit) {
  const txns = trace.txns
  const agents = Array.from({ length: trace.numAgents }, (_, agent) => {
    const doc = new Y.Doc()
    doc.clientID = 1000 + agent
    return { doc, text: doc.getText('t'), applied: new Set() }
  })
  const updates = new Array(txns.length)
  txns.forEach((txn, i) => {
    const agent = agents[txn.agent]
    const missing = []
    const stack = [...txn.parents]
    const seen = new Set()
    while (stack.length) {
      const j = stack.pop()
      if (agent.applied.has(j) || seen.has(j)) continue
      seen.add(j)
      missing.push(j)
      stack.push(...txns[j].parents)
    }
    missing.sort((x, y) => x - y)
    for (const j of missing) {
      Y.applyUpdate(agent.doc, updates[j])
      agent.applied.add(j)
    }
    const before = Y.encodeStateVector(agent.doc)
    const base = i < baseLimit ? Y.encodeStateAsUpdate(agent.doc) : undefined
    agent.doc.transact(() => {
      for (const [pos, del, ins] of txn.patches) {
        if (del > 0) agent.text.delete(pos, del)
        if (ins) agent.text.insert(pos, ins)
      }
    })
    updates[i] = Y.encodeStateAsUpdate(agent.doc, before)
    agent.applied.add(i)
    emit(`${name}/txn${i}`, updates[i], base)
  })
  // Y.mergeUpdates is quadratic over many small updates: a prefix shows the same thing.
  emit(`${name}/merged`, Y.mergeUpdates(updates.slice(0, 2000)))
  const all = new Y.Doc()
  for (const update of updates) Y.applyUpdate(all, update)
  emit(`${name}/state`, Y.encodeStateAsUpdate(all))
}

if (config.types) types()
for (const path of config.traces || []) {
  const trace = JSON.parse(gunzipSync(readFileSync(path)).toString())
  const name = path.split('/').pop().replace('.json.gz', '')
  if (trace.numAgents) concurrent(name, trace, config.baseLimit ?? 200)
  else sequential(name, trace, config.baseLimit ?? 200)
}
flush()

// Real Yjs on both sides of a restore (functions/collab/restore.py, tests/core/test_restore.py):
//
//   node restore_check.mjs scenes
//     builds scenes, one JSON line each: {"name", "kinds": {root: kind}, "version", "current",
//     "concurrent", "typed"} (base64 v1 updates). `version` is a snapshot taken on the way,
//     `current` the state after more editing; `concurrent` an update another client made on
//     `current` before it saw any restore, `typed` a string it typed.
//
//   node restore_check.mjs check < cases
//     per JSON line {"name", "kinds", "version", "current", "restore", "concurrent"?} one line
//     {"name", "expected", "before", "restored", "emptied", "merged", "mergedOtherOrder", "error"}:
//     `expected` is every root of the version dumped with its kind, `before` of `current`, `restored` the
//     same of `current` + `restore` applied by Yjs, `emptied` each root that changed kind read
//     in its old kind (must be empty), `merged` the dump after `concurrent` too (both orders,
//     once the two replicas exchanged their states);
//     with "digest": true the dumps are given as their SHA-256.
//
// The dump (yjs_dump.mjs) keeps what toJSON() loses: a Y.Text is its toDelta() (embeds dumped
// too), types are tagged, Uint8Array, BigInt and undefined are told apart from arrays, strings
// and null.
import { createInterface } from 'node:readline'
import { readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { gunzipSync } from 'node:zlib'
import * as Y from 'yjs'
import { attempt, b64, docOf, dump, dumpRoots, fromB64, root } from './yjs_dump.mjs'

// -- scenes ------------------------------------------------------------------------------

let nextClient = 3000000000

function newDoc () {
  const doc = new Y.Doc()
  doc.clientID = nextClient++
  return doc
}

// `build(doc)` edits, calls `snapshot()` to take the version, edits on; `concurrently(doc)`
// is another client's edit on the current state.
function scene (name, kinds, build, concurrently) {
  const doc = newDoc()
  let version = null
  build(doc, () => { version = Y.encodeStateAsUpdate(doc) })
  const current = Y.encodeStateAsUpdate(doc)
  let concurrent = ''
  let typed = ''
  if (concurrently) {
    const other = newDoc()
    Y.applyUpdate(other, current)
    const before = Y.encodeStateVector(other)
    typed = concurrently(other)
    concurrent = b64(Y.encodeStateAsUpdate(other, before))
  }
  console.log(JSON.stringify({ name, kinds, version: b64(version), current: b64(current), concurrent, typed }))
}

// The Yjs index of `needle` in a Y.Text: toString() leaves embeds out, an index counts them.
function indexOf (text, needle) {
  let index = 0
  for (const op of text.toDelta()) {
    if (typeof op.insert !== 'string') {
      index += 1
      continue
    }
    const at = op.insert.indexOf(needle)
    if (at >= 0) return index + at
    index += op.insert.length
  }
  throw new Error(`no ${needle} in the text`)
}

const SCREENPLAY = [
  'INT. KITCHEN - NIGHT\n',
  'A kettle screams. MARA (40s) lifts it off the flame.\n',
  'MARA\n',
  'You said you would call.\n',
  'JONAS (O.S.)\n',
  'I did. Twice. 📞 Nobody answered.\n',
  'She turns. The window is open — 雨 is falling.\n',
  'CUT TO:\n'
].join('')

function scenes () {
  scene('text', { text: 'text' }, (doc, snapshot) => {
    const text = doc.getText('text')
    text.insert(0, SCREENPLAY)
    text.format(0, 20, { bold: true })
    text.format(21, 7, { italic: true, color: '#ff0000' })
    text.format(indexOf(text, 'Twice'), 5, { link: { href: 'https://x.test', n: 1 } })
    text.insertEmbed(indexOf(text, 'MARA\n'), { image: 'https://x.test/mara.png', width: 300 })
    text.insertEmbed(5, new Y.Map([['note', 'embedded type'], ['n', 2]]), { comment: true })
    snapshot()
    text.insert(indexOf(text, 'lifts'), 'slowly ', { underline: true })
    text.delete(indexOf(text, 'JONAS'), 'JONAS (O.S.)\n'.length)
    text.format(0, 30, { bold: null, italic: true }) // formatting changed on kept text
    text.format(indexOf(text, 'Twice'), 5, { link: null })
    text.insertEmbed(text.length, { video: 'v.mp4' })
    text.delete(indexOf(text, '雨'), 1)
    text.insert(text.length, 'INT. HALLWAY - CONTINUOUS\nMara runs.\n', { heading: 2 })
  }, (other) => {
    const text = other.getText('text')
    const at = indexOf(text, 'You said') + 'You said'.length
    text.insert(at, ' CONCURRENT-1')
    text.insert(text.length, 'CONCURRENT-2\n')
    return 'CONCURRENT-1'
  })

  scene('map', { map: 'map' }, (doc, snapshot) => {
    const map = doc.getMap('map')
    map.set('int', 42)
    map.set('negative', -7)
    map.set('float', 3.14159)
    map.set('large', 2 ** 40)
    map.set('bigint', 1234567890123456789n)
    map.set('string', 'scene heading')
    map.set('true', true)
    map.set('null', null)
    map.set('bytes', new Uint8Array([0, 1, 255]))
    map.set('json', { a: 1, nested: { b: [1, 2, { c: 'd' }] }, '': 'empty key' })
    map.set('list', [1, 'two', [3, [4]], null, false])
    const inner = new Y.Map([['kept', 'same'], ['changed', 1]])
    map.set('nestedMap', inner)
    inner.set('deeper', new Y.Map([['x', [1, { y: 2 }]]]))
    map.set('nestedArray', Y.Array.from([1, 2, 3]))
    const notes = new Y.Text('notes')
    map.set('nestedText', notes)
    notes.format(0, 2, { bold: true })
    const xml = new Y.XmlFragment()
    map.set('nestedXml', xml)
    const p = new Y.XmlElement('p')
    p.setAttribute('id', 'p1')
    xml.insert(0, [p])
    map.set('willBecomeMap', 'a string')
    map.set('willBecomeString', new Y.Map([['a', 1]]))
    snapshot()
    map.set('int', 43)
    map.delete('string')
    map.set('added', 'later')
    map.set('float', 2.5)
    map.set('bytes', new Uint8Array([9]))
    inner.set('changed', 2)
    inner.get('deeper').set('x', 'flat')
    inner.set('extra', new Y.Array())
    map.get('nestedArray').delete(0, 2)
    map.get('nestedArray').push([new Y.Map([['in', 'array']])])
    notes.insert(0, 'more ', { italic: true })
    notes.format(5, 3, { bold: null })
    p.setAttribute('id', 'p2')
    xml.insert(1, [new Y.XmlText('tail')])
    map.set('willBecomeMap', new Y.Map([['b', 2]]))
    map.set('willBecomeString', 'now a string')
  }, (other) => {
    const map = other.getMap('map')
    map.get('nestedMap').set('concurrentKey', 'CONCURRENT')
    map.get('nestedText').insert(0, 'CONCURRENT ')
    return 'CONCURRENT'
  })

  scene('array', { array: 'array', body: 'text' }, (doc, snapshot) => {
    const array = doc.getArray('array')
    array.insert(0, [1, 2, 3, 'four', { five: 5 }, [6], null, new Uint8Array([7])])
    array.push([new Y.Map([['m', 1]]), Y.Array.from(['a', 'b']), new Y.Text('element text')])
    doc.getText('body').insert(0, 'the body\n')
    snapshot()
    array.unshift(['first'])
    array.delete(3, 2)
    array.insert(2, [true, false, 1.5])
    array.get(array.length - 3).set('m', 2)
    array.get(array.length - 2).insert(1, ['inserted'])
    array.get(array.length - 1).insert(0, 'changed ')
    array.push(['last'])
    doc.getText('body').insert(0, 'more ')
  }, (other) => {
    other.getArray('array').push(['CONCURRENT'])
    other.getText('body').insert(other.getText('body').length, 'CONCURRENT\n')
    return 'CONCURRENT'
  })

  scene('xml', { xml: 'xml' }, (doc, snapshot) => {
    const fragment = doc.getXmlFragment('xml')
    const heading = new Y.XmlElement('scene-heading')
    heading.setAttribute('data-id', 'h1')
    heading.setAttribute('class', 'big')
    heading.setAttribute('level', 2)
    const text = new Y.XmlText('INT. HOUSE - DAY')
    heading.insert(0, [text])
    const action = new Y.XmlElement('action')
    const actionText = new Y.XmlText('Rain on the window.')
    action.insert(0, [actionText])
    const dialogue = new Y.XmlElement('dialogue')
    const character = new Y.XmlElement('character')
    character.insert(0, [new Y.XmlText('MARA')])
    dialogue.insert(0, [character, new Y.XmlText('Hello there')])
    fragment.insert(0, [heading, action, dialogue, new Y.XmlText('loose text')])
    text.format(0, 4, { bold: true })
    actionText.insertEmbed(4, { image: 'rain.png' })
    actionText.setAttribute('lang', 'en')
    snapshot()
    text.format(0, 4, { bold: null, italic: true })
    text.insert(5, 'BIG ')
    heading.setAttribute('class', 'bigger')
    heading.removeAttribute('data-id')
    heading.setAttribute('new', 'attr')
    actionText.delete(0, 5)
    actionText.setAttribute('lang', 'de')
    const nested = new Y.XmlElement('parenthetical')
    nested.insert(0, [new Y.XmlText('(quietly)')])
    dialogue.insert(1, [nested])
    fragment.delete(3, 1)
    fragment.insert(1, [new Y.XmlElement('transition')])
    const swapped = new Y.XmlElement('shot')
    fragment.delete(2, 1) // the action element, replaced by another tag
    fragment.insert(2, [swapped])
  }, (other) => {
    const fragment = other.getXmlFragment('xml')
    const heading = fragment.get(0)
    heading.get(0).insert(0, 'CONCURRENT ')
    return 'CONCURRENT'
  })

  // Roots created after the version (emptied by the restore), and one the version has
  // that was emptied since (filled again).
  scene('roots', { text: 'text', lateText: 'text', lateMap: 'map', lateArray: 'array', lateXml: 'xml', cleared: 'text' }, (doc, snapshot) => {
    doc.getText('text').insert(0, 'kept\n')
    doc.getText('cleared').insert(0, 'cleared later', { bold: true })
    snapshot()
    doc.getText('lateText').insert(0, 'late', { italic: true })
    doc.getMap('lateMap').set('k', new Y.Map([['v', 1]]))
    doc.getArray('lateArray').push([1, new Y.Text('t')])
    doc.getXmlFragment('lateXml').insert(0, [new Y.XmlElement('p')])
    doc.getText('cleared').delete(0, doc.getText('cleared').length)
    doc.getText('text').insert(0, 'x')
  }, (other) => {
    other.getText('lateText').insert(0, 'CONCURRENT')
    return 'CONCURRENT'
  })

  // An editing trace: many scattered changes between the version and now.
  const trace = JSON.parse(gunzipSync(readFileSync(new URL('../../data/traces/automerge-paper.json.gz', import.meta.url))).toString())
  scene('trace', { text: 'text' }, (doc, snapshot) => {
    const text = doc.getText('text')
    const run = (from, to) => {
      for (const txn of trace.txns.slice(from, to)) {
        doc.transact(() => {
          for (const [pos, del, ins] of txn.patches) {
            if (del > 0) text.delete(pos, del)
            if (ins) text.insert(pos, ins)
          }
        })
      }
    }
    run(0, 40000)
    text.format(0, 200, { bold: true })
    snapshot()
    run(40000, 80000)
  }, (other) => {
    const text = other.getText('text')
    text.insert(Math.floor(text.length / 2), 'CONCURRENT')
    return 'CONCURRENT'
  })
}

// Two scenes that share no history, as a scene whose app changed the types of its roots
// would hold: in the version "shape" is a Y.Text, "list" a Y.Array and "board" a Y.Map; now
// they are a Y.Map, a Y.Text and a Y.XmlFragment. Read in its old kind after the restore,
// each must be empty (Yjs reads a root's sequence in any sequence kind, so the old kinds
// are chosen to show the old content if it were left: a map, a text, an xml fragment).
function kindChange () {
  const version = newDoc()
  version.getText('shape').insert(0, 'was text é😀', { bold: true })
  version.getArray('list').push([1, 2])
  version.getMap('board').set('k', 'v')
  const current = newDoc()
  current.getMap('shape').set('now', 'a map')
  current.getText('list').insert(0, 'now text ü', { italic: true })
  current.getXmlFragment('board').insert(0, [new Y.XmlElement('p'), new Y.XmlText('now xml')])
  console.log(JSON.stringify({
    name: 'kind-change',
    kinds: { shape: 'text', list: 'array', board: 'map' },
    oldKinds: { shape: 'map', list: 'text', board: 'xml' },
    version: b64(Y.encodeStateAsUpdate(version)),
    current: b64(Y.encodeStateAsUpdate(current)),
    concurrent: '',
    typed: ''
  }))
}

// A version pycrdt cannot write back: an XmlElement directly in a map (Yjs allows it).
function unwritable () {
  scene('xml-in-map', { map: 'map' }, (doc, snapshot) => {
    const element = new Y.XmlElement('p')
    doc.getMap('map').set('node', element)
    element.setAttribute('a', 'b')
    snapshot()
    doc.getMap('map').delete('node')
  })
}

// -- check -------------------------------------------------------------------------------

async function check () {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of lines) {
    if (!line) continue
    const c = JSON.parse(line)
    const version = fromB64(c.version)
    const current = fromB64(c.current)
    const restore = fromB64(c.restore)
    const out = { name: c.name, expected: null, restored: null, emptied: {}, merged: null, mergedOtherOrder: null, error: null }
    let error
    ;[out.expected, error] = attempt(() => dumpRoots(docOf(version), c.kinds))
    if (!error) [out.before, error] = attempt(() => dumpRoots(docOf(current), c.kinds))
    if (!error) [out.restored, error] = attempt(() => dumpRoots(docOf(current, restore), c.kinds))
    for (const [name, kind] of Object.entries(c.oldKinds || {})) {
      if (!error) [out.emptied[name], error] = attempt(() => dump(root(docOf(current, restore), name, kind)))
    }
    if (!error && c.concurrent) {
      const concurrent = fromB64(c.concurrent)
      // The server applies the restore, then the concurrent edit; the client that made the
      // edit receives the restore after it. Each replica's own clean-up of formatting marks
      // (Yjs deletes marks a remote change made redundant) reaches the other as an update:
      // so the two exchange their states, as the network would, before they are compared.
      ;[out.merged, error] = attempt(() => {
        const server = docOf(current, restore, concurrent)
        const client = docOf(current, concurrent, restore)
        Y.applyUpdate(server, Y.encodeStateAsUpdate(client))
        Y.applyUpdate(client, Y.encodeStateAsUpdate(server))
        out.mergedOtherOrder = dumpRoots(client, c.kinds)
        return dumpRoots(server, c.kinds)
      })
    }
    out.error = error
    if (c.digest) {
      // A big scene: what is compared is the dumps' digests, not megabytes of JSON.
      for (const key of ['expected', 'before', 'restored', 'merged', 'mergedOtherOrder']) {
        if (out[key] !== null) out[key] = createHash('sha256').update(JSON.stringify(out[key])).digest('hex')
      }
    }
    process.stdout.write(JSON.stringify(out) + '\n')
  }
}

const mode = process.argv[2]
if (mode === 'scenes') {
  scenes()
  kindChange()
  unwritable()
} else if (mode === 'check') {
  await check()
} else {
  console.error('usage: node restore_check.mjs scenes | check < cases')
  process.exit(2)
}

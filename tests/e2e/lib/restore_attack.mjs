// Scenes a hostile or unlucky user could leave before a restore (tests/core/test_attack_restore.py),
// built and read back by real Yjs:
//
//   node restore_attack.mjs scenes
//     one JSON line per scene {"name", "kinds", "oldKinds", "version", "current"} (base64 v1
//     updates): `kinds` the roots as the version holds them, `oldKinds` as the scene now holds
//     those whose kind changed.
//
//   node restore_attack.mjs check < cases
//     per JSON line {"name", "kinds", "oldKinds", "version", "current", "restore", "digest"?} one
//     line {"name", "expected", "restored", "asOld", "versionAsOld", "error"}: `expected` every
//     root of the version (in `kinds`), `restored` the same of current + restore, `asOld` each
//     root of `oldKinds` read in that old kind after the restore, `versionAsOld` the version
//     read in that kind (what asOld must be: Yjs reads a root's sequence in any sequence kind).
//
// The dump is yjs_dump.mjs's: a Y.Text is its toDelta() (embeds dumped), types tagged.
import { createInterface } from 'node:readline'
import { createHash } from 'node:crypto'
import * as Y from 'yjs'
import { attempt, b64, docOf, dump, dumpRoots, fromB64, root } from './yjs_dump.mjs'

let nextClient = 3100000000

function newDoc (state) {
  const doc = new Y.Doc()
  doc.clientID = nextClient++
  if (state) Y.applyUpdate(doc, state)
  return doc
}

function emit (name, kinds, version, current, oldKinds = {}) {
  console.log(JSON.stringify({ name, kinds, oldKinds, version: b64(version), current: b64(current) }))
}

// `build(doc, snapshot)` edits, calls snapshot() to take the version, edits on.
function scene (name, kinds, build) {
  const doc = newDoc()
  let version = null
  build(doc, () => { version = Y.encodeStateAsUpdate(doc) })
  emit(name, kinds, version, Y.encodeStateAsUpdate(doc))
}

// -- content a restore must bring back exactly -----------------------------------------------

function unicodeLines () {
  scene('unicode-crlf', { text: 'text' }, (doc, snapshot) => {
    const text = doc.getText('text')
    text.insert(0, [
      'INT. CAFÉ – NIGHT\r\n',
      'A 👩‍👩‍👧 family sits under a 🇫🇷 flag.\r\n',
      '\r\n',
      'MARA\r\n',
      'Combining: e\u0301 a\u0300 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢.\r\n',
      'Tabs\tand\u00a0spaces \u2028 separators\r\n',
      'END\r\n'
    ].join(''), { font: 'courier' })
    text.format(5, 4, { bold: true })
    snapshot()
    const s = text.toString()
    text.insert(s.indexOf('\r\n') + 1, 'INSIDE-CRLF') // between \r and \n
    const zwj = text.toString().indexOf('👩‍👩‍👧')
    text.insert(zwj + 2, 'ZWJ') // between the code points of the family
    text.delete(text.toString().indexOf('🇫🇷') + 1, 1) // half a surrogate pair: Yjs writes U+FFFD
    text.delete(text.toString().indexOf('𝔫'), 4)
    text.insert(text.toString().indexOf('END'), '😀😀\n\r', { bold: true })
    text.format(0, text.length, { font: null })
  })
}

function longLine () {
  scene('long-line', { text: 'text' }, (doc, snapshot) => {
    const text = doc.getText('text')
    text.insert(0, 'ab'.repeat(400000) + 'Z'.repeat(700000) + 'é'.repeat(300000))
    text.format(700000, 100, { bold: true })
    snapshot()
    text.insert(100, 'X')
    text.delete(500000, 7)
    text.insert(1200000, '😀')
    text.format(650000, 200000, { italic: true })
    text.insert(text.length, 'tail')
  })
}

function emptyVersion () {
  scene('empty-version', { text: 'text', map: 'map', array: 'array', xml: 'xml' }, (doc, snapshot) => {
    snapshot()
    doc.getText('text').insert(0, 'written after the version', { bold: true })
    doc.getMap('map').set('k', new Y.Map([['v', 1]]))
    doc.getArray('array').push([1, new Y.Text('t')])
    doc.getXmlFragment('xml').insert(0, [new Y.XmlElement('p'), new Y.XmlText('x')])
  })
}

function nested () {
  scene('deep-50', { map: 'map' }, (doc, snapshot) => {
    let at = doc.getMap('map')
    const chain = [at]
    for (let i = 0; i < 50; i++) {
      const next = i % 2 ? new Y.Map() : new Y.Array()
      if (at instanceof Y.Map) {
        at.set(`k${i}`, next)
        at.set(`v${i}`, i)
      } else at.push([i, next, `s${i}`])
      chain.push(next)
      at = next
    }
    const leaf = new Y.Text('leaf')
    if (at instanceof Y.Map) at.set('leaf', leaf)
    else at.push([leaf])
    snapshot()
    leaf.insert(0, 'changed ', { bold: true })
    chain[25].set ? chain[25].set('added', 'x') : chain[25].insert(0, ['added'])
    chain[10].set ? chain[10].delete('v10') : chain[10].delete(0, 1)
    chain[40].set ? chain[40].set('v40', new Y.Map([['was', 'a number']])) : chain[40].insert(1, [new Y.Map()])
  })
}

function xmlAttributes () {
  scene('xml-attributes', { xml: 'xml' }, (doc, snapshot) => {
    const fragment = doc.getXmlFragment('xml')
    const p = new Y.XmlElement('p')
    p.setAttribute('level', 2)
    p.setAttribute('flag', true)
    p.setAttribute('obj', { a: 1, b: [1, 'x'] })
    p.setAttribute('emoji', 'é😀')
    p.setAttribute('empty', '')
    const inner = new Y.XmlElement('span')
    inner.setAttribute('class', 'k')
    const text = new Y.XmlText('hello')
    text.setAttribute('lang', 'en')
    text.setAttribute('n', 3)
    inner.insert(0, [text])
    p.insert(0, [inner])
    const h = new Y.XmlElement('h1')
    h.insert(0, [new Y.XmlText('title')])
    fragment.insert(0, [p, h, new Y.XmlElement('hr')])
    snapshot()
    p.setAttribute('level', '2') // a string now, not a number
    p.removeAttribute('flag')
    p.setAttribute('obj', { a: 1, b: [1, 'y'] })
    p.setAttribute('added', 'x')
    p.removeAttribute('empty')
    inner.setAttribute('class', 'changed')
    text.setAttribute('lang', 'de')
    text.removeAttribute('n')
    text.insert(5, ' world')
    fragment.delete(1, 1) // the h1, then the same children under another tag
    const h2 = new Y.XmlElement('h2')
    h2.insert(0, [new Y.XmlText('title')])
    fragment.insert(1, [h2])
    fragment.delete(2, 1)
    fragment.insert(0, [new Y.XmlElement('hr')])
  })
}

function formats () {
  scene('formats', { text: 'text' }, (doc, snapshot) => {
    const text = doc.getText('text')
    text.insert(0, 'one two three four five six\n')
    text.format(0, 7, { bold: true })
    text.format(4, 9, { italic: true, color: { r: 1, g: [0, 0] } })
    text.format(8, 5, { size: 12 })
    text.insertEmbed(3, { image: 'a.png' }, { bold: true })
    text.insertEmbed(4, { image: 'b.png' }, { italic: true })
    const embedded = new Y.Text('embedded text')
    text.insertEmbed(10, embedded, { note: 'n' })
    embedded.format(0, 8, { bold: true })
    text.insert(text.length, 'x', { a: 1, b: 2, c: 3 })
    snapshot()
    text.format(0, text.length, { bold: null, italic: true, size: 13 })
    text.delete(2, 6)
    text.insert(2, 'REPLACED', { weird: { deep: [1, { x: null }] } })
    embedded.insert(0, 'more ')
    text.format(text.length - 1, 1, { a: null, b: 3 })
    text.insertEmbed(0, { video: 'v.mp4' })
  })
}

function mapValues () {
  const values = () => [
    ['nan', NaN], ['inf', Infinity], ['-inf', -Infinity], ['big', 2 ** 53 + 2],
    ['int32min', -(2 ** 31)], ['tiny', 1e-300], ['bigint', -1234567890123456789n],
    ['bytes0', new Uint8Array([])], ['str0', ''], ['nul', 'a\u0000b'], ['__proto__', 'proto'],
    ['', 'empty key'], ['😀', 'emoji key'], ['list', [[], {}, [[[1]]], '']], ['obj', { '': { '': null } }]
  ]
  scene('map-values', { map: 'map', other: 'map' }, (doc, snapshot) => {
    const map = doc.getMap('map')
    for (const [k, v] of values()) map.set(k, v)
    const cards = Y.Array.from([new Y.Map([['id', 1]]), new Y.Map([['id', 2]]), new Y.Map([['id', 3]])])
    map.set('cards', cards)
    doc.getMap('other').set('same', 'value')
    snapshot()
    for (const [k] of values()) map.set(k, 'overwritten')
    map.delete('__proto__')
    cards.get(0).set('id', 10)
    cards.delete(1, 1)
    cards.insert(0, [new Y.Map([['id', 0]])])
    doc.getMap('other').set('same', 'changed')
  })
}

function negativeZero () {
  scene('negative-zero', { map: 'map' }, (doc, snapshot) => {
    doc.getMap('map').set('z', -0)
    snapshot()
    doc.getMap('map').set('z', 'overwritten')
  })
}

// A root used as text that also holds an array element (a page that read it with getArray),
// made after the version: the restore must empty it.
function mixedRoot () {
  const doc = newDoc()
  doc.getText('script').insert(0, 'INT. HOUSE\nMARA enters.\n')
  const version = Y.encodeStateAsUpdate(doc)
  doc.getText('notes').insert(0, 'later notes\n')
  const other = newDoc(Y.encodeStateAsUpdate(doc))
  other.getArray('notes').insert(3, [42])
  emit('mixed-root', { script: 'text', notes: 'text' }, version, Y.encodeStateAsUpdate(other))
}

function arrayDuplicates () {
  scene('array-duplicates', { array: 'array' }, (doc, snapshot) => {
    const array = doc.getArray('array')
    const values = []
    for (let i = 0; i < 300; i++) values.push(i % 3, 'x', i % 3 ? null : true)
    array.push(values)
    snapshot()
    array.delete(10, 50)
    array.insert(100, ['x', 'x', 0, 0, null])
    array.insert(0, [1, 1, 1])
    array.delete(array.length - 40, 40)
  })
}

// Every kind of shared type embedded in a Y.Text (Yjs takes any), then deleted.
function embeddedTypes () {
  scene('embedded-types', { text: 'text' }, (doc, snapshot) => {
    const text = doc.getText('text')
    text.insert(0, 'a b c d e\n')
    const element = new Y.XmlElement('figure')
    const fragment = new Y.XmlFragment()
    const xmlText = new Y.XmlText('caption')
    const array = Y.Array.from([1, 'two'])
    text.insertEmbed(1, array, { kind: 'array' })
    text.insertEmbed(3, element, { kind: 'element' })
    text.insertEmbed(5, fragment, { kind: 'fragment' })
    text.insertEmbed(7, xmlText, { kind: 'xmltext' })
    element.setAttribute('src', 'x.png')
    fragment.insert(0, [new Y.XmlElement('p')])
    snapshot()
    text.delete(0, text.length)
    text.insert(0, 'gone\n')
  })
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

// -- roots whose kind changed ------------------------------------------------------------------

const KINDS = ['text', 'map', 'array', 'xml']

function fill (doc, name, kind, tag) {
  if (kind === 'text') doc.getText(name).insert(0, `${tag} text é😀\n`, { bold: true })
  else if (kind === 'map') doc.getMap(name).set(`${tag}`, new Y.Map([['n', 1]]))
  else if (kind === 'array') doc.getArray(name).push([`${tag}`, 2, new Y.Map([['a', 1]])])
  else doc.getXmlFragment(name).insert(0, [new Y.XmlElement(`${tag}-el`), new Y.XmlText(`${tag} xml`)])
}

function empty (doc, name, kind) {
  const type = root(doc, name, kind)
  if (kind === 'map') for (const key of [...type.keys()]) type.delete(key)
  else type.delete(0, type.length)
}

function kindChanges () {
  // Unrelated histories: a scene whose app changed the types of its roots.
  const version = newDoc()
  const current = newDoc()
  const kinds = {}
  const oldKinds = {}
  for (const a of KINDS) {
    for (const b of KINDS) {
      if (a === b) continue
      const name = `${a}-now-${b}`
      fill(version, name, a, 'v')
      fill(current, name, b, 'c')
      kinds[name] = a
      oldKinds[name] = b
    }
  }
  emit('kinds-unrelated', kinds, Y.encodeStateAsUpdate(version), Y.encodeStateAsUpdate(current), oldKinds)
  // One history: the root was emptied in its kind, then written in another by a later page load.
  const doc = newDoc()
  for (const name of Object.keys(kinds)) fill(doc, name, kinds[name], 'v')
  const at = Y.encodeStateAsUpdate(doc)
  const emptier = newDoc(at)
  for (const name of Object.keys(kinds)) empty(emptier, name, kinds[name])
  const writer = newDoc(Y.encodeStateAsUpdate(emptier))
  for (const name of Object.keys(kinds)) fill(writer, name, oldKinds[name], 'c')
  emit('kinds-one-history', kinds, at, Y.encodeStateAsUpdate(writer), oldKinds)
}

// -- check -------------------------------------------------------------------------------------

async function check () {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of lines) {
    if (!line) continue
    const c = JSON.parse(line)
    const version = fromB64(c.version)
    const current = fromB64(c.current)
    const restore = fromB64(c.restore)
    const out = { name: c.name, expected: null, restored: null, asOld: {}, versionAsOld: {}, error: null }
    let error
    ;[out.expected, error] = attempt(() => dumpRoots(docOf(version), c.kinds))
    if (!error) [out.restored, error] = attempt(() => dumpRoots(docOf(current, restore), c.kinds))
    for (const [name, kind] of Object.entries(c.oldKinds || {})) {
      if (!error) [out.asOld[name], error] = attempt(() => dump(root(docOf(current, restore), name, kind)))
      if (!error) [out.versionAsOld[name], error] = attempt(() => dump(root(docOf(version), name, kind)))
    }
    out.error = error
    if (c.digest) {
      for (const key of ['expected', 'restored']) {
        if (out[key] !== null) out[key] = createHash('sha256').update(JSON.stringify(out[key])).digest('hex')
      }
    }
    // U+2028/9 unescaped: Python's splitlines() would cut the line there.
    process.stdout.write(JSON.stringify(out).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029') + '\n')
  }
}

const mode = process.argv[2]
if (mode === 'scenes') {
  unicodeLines()
  longLine()
  emptyVersion()
  nested()
  xmlAttributes()
  formats()
  mapValues()
  arrayDuplicates()
  negativeZero()
  mixedRoot()
  embeddedTypes()
  unwritable()
  kindChanges()
} else if (mode === 'check') {
  await check()
} else {
  console.error('usage: node restore_attack.mjs scenes | check < cases')
  process.exit(2)
}

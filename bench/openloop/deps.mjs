// The Node packages of the benchmark's clients, taken from tests/e2e/node_modules (pinned by
// tests/e2e/package-lock.json) by file, not by bare name: this folder has no node_modules of
// its own, and the files must be the very ones tests/e2e/lib/client.mjs imports, so that one
// yjs module instance serves both (two copies of yjs in one process break instanceof checks).
export * as Y from '../../tests/e2e/node_modules/yjs/dist/yjs.mjs'
export * as syncProtocol from '../../tests/e2e/node_modules/y-protocols/sync.js'
export * as encoding from '../../tests/e2e/node_modules/lib0/encoding.js'
export * as decoding from '../../tests/e2e/node_modules/lib0/decoding.js'
export { default as WebSocket } from '../../tests/e2e/node_modules/ws/wrapper.mjs'

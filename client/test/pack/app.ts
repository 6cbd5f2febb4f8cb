/**
 * The throwaway app the packed tarball is installed into: a React page that imports both
 * entry points, type-checked under the two module resolutions apps use, bundled by Vite,
 * and a Node script that imports the installed package with no bundler in between.
 */

export const APP_FILES: Record<string, string> = {
  'package.json': JSON.stringify({ name: 'throwaway-app', version: '0.0.0', private: true, type: 'module' }, null, 2),
  'index.html': `<!doctype html>
<html><body><div id="root"></div><script type="module" src="./src/main.tsx"></script></body></html>
`,
  'src/main.tsx': `import { createRoot } from 'react-dom/client';
import * as Y from 'yjs';
import { ApiGatewayProvider, SCENE_ID_PATTERN, type ConnectionStatus, type Role } from 'y-apigateway';
import { CollaborationStatusIndicator, useYjsCollaboration } from 'y-apigateway/react';

function Scene() {
  const { doc, syncStatus, saved, role, connectionError, reconnect } = useYjsCollaboration({
    sceneId: 'scene-42',
    url: 'wss://abc123.execute-api.eu-west-1.amazonaws.com/prod',
    getToken: async () => 'a-token',
  });
  const status: ConnectionStatus = syncStatus;
  const who: Role | null = role;
  const isSaved: boolean = saved;
  return (
    <main data-role={who ?? 'unknown'} data-text={doc?.getText('scene').toString()}>
      <CollaborationStatusIndicator status={status} onReconnect={reconnect} error={connectionError} />
      <p>{isSaved ? 'All changes saved' : 'Saving…'}</p>
    </main>
  );
}

const provider = new ApiGatewayProvider('wss://example.invalid/prod', 'scene-42', new Y.Doc(), { token: 't', connect: false });
provider.on('saved', (saved: boolean) => console.log('saved', saved, provider.unsyncedChanges));
console.log(SCENE_ID_PATTERN.test('scene-42'));
createRoot(document.getElementById('root')!).render(<Scene />);
`,
  // Proof that the checks above used the package's declarations, not \`any\`: every line
  // below must be an error, or tsc fails on an unused @ts-expect-error.
  'src/misuse.ts': `import * as Y from 'yjs';
import { ApiGatewayProvider } from 'y-apigateway';
import { useYjsCollaboration } from 'y-apigateway/react';

const provider = new ApiGatewayProvider('wss://x/prod', 'scene', new Y.Doc(), { token: 't', connect: false });
// @ts-expect-error saved is read-only
provider.saved = false;
// @ts-expect-error not a status
provider.on('status', ({ status }) => status === 'nope');
// @ts-expect-error sceneId is a string
export const misuse = () => useYjsCollaboration({ sceneId: 42, url: 'wss://x/prod' });
`,
  'tsconfig.json': JSON.stringify(
    {
      compilerOptions: {
        target: 'ES2022',
        lib: ['ES2022', 'DOM'],
        module: 'ESNext',
        moduleResolution: 'Bundler',
        jsx: 'react-jsx',
        strict: true,
        noEmit: true,
        // As Vite's templates set it; misuse.ts shows the package's types are still in force.
        skipLibCheck: true,
        types: [],
      },
      include: ['src'],
    },
    null,
    2,
  ),
  'tsconfig.nodenext.json': JSON.stringify(
    {
      extends: './tsconfig.json',
      compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext' },
    },
    null,
    2,
  ),
  'run.mjs': `import { WebSocket } from 'ws';
import * as Y from 'yjs';
import { createElement } from 'react';
import { renderToString } from 'react-dom/server';
import { ApiGatewayProvider } from 'y-apigateway';
import { CollaborationStatusIndicator } from 'y-apigateway/react';

const doc = new Y.Doc();
const provider = new ApiGatewayProvider('wss://example.invalid/prod', 'not a scene id', doc, {
  token: 't',
  WebSocketPolyfill: WebSocket,
});
doc.getText('scene').insert(0, 'FADE IN:');
const html = renderToString(createElement(CollaborationStatusIndicator, { status: provider.status }));
console.log(JSON.stringify({ status: provider.status, saved: provider.saved, unsynced: provider.unsyncedChanges, html }));
provider.destroy();
`,
};

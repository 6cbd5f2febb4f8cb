import { EditorState } from '@codemirror/state';
import { basicSetup, EditorView } from 'codemirror';
import { useEffect, useRef } from 'react';
import { yCollab } from 'y-codemirror.next';
import type { Awareness } from 'y-protocols/awareness';
import * as Y from 'yjs';

interface SceneEditorProps {
  text: Y.Text;
  awareness: Awareness;
}

/** CodeMirror 6 bound to the scene's Y.Text; y-codemirror draws the others' cursors. */
export function SceneEditor({ text, awareness }: SceneEditorProps) {
  const host = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const parent = host.current;
    if (parent === null) return undefined;
    // Undo only what this window typed, never the others' edits.
    const undoManager = new Y.UndoManager(text);
    const view = new EditorView({
      parent,
      state: EditorState.create({
        doc: text.toString(),
        extensions: [basicSetup, EditorView.lineWrapping, yCollab(text, awareness, { undoManager })],
      }),
    });
    return () => {
      view.destroy();
      undoManager.destroy();
    };
  }, [text, awareness]);

  return <div ref={host} className="scene-editor" aria-label="Scene text" />;
}

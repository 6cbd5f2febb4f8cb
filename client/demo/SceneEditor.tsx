import { Compartment, EditorState } from '@codemirror/state';
import { EditorView, minimalSetup } from 'codemirror';
import { useEffect, useRef } from 'react';
import { yCollab } from 'y-codemirror.next';
import type { Awareness } from 'y-protocols/awareness';
import * as Y from 'yjs';

interface SceneEditorProps {
  text: Y.Text;
  awareness: Awareness;
  readOnly: boolean;
}

// y-codemirror shows a remote caret's name only on hover (opacity 0 in its base theme); in a
// writers' room you want to see who is where at a glance. A theme outranks a base theme.
const namesAlwaysVisible = EditorView.theme({
  '.cm-ySelectionInfo': { opacity: 1, transition: 'none' },
  // Room above the first line for its caret's name label.
  '.cm-content': { paddingTop: '1.4em' },
});

function editable(readOnly: boolean) {
  return [EditorState.readOnly.of(readOnly), EditorView.editable.of(!readOnly)];
}

/**
 * CodeMirror 6 bound to the scene's Y.Text: plain text, no line numbers (a script, not
 * code); y-codemirror draws the others' named carets. A viewer gets a read-only editor,
 * so nothing is typed that the server would refuse.
 */
export function SceneEditor({ text, awareness, readOnly }: SceneEditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const access = useRef(new Compartment());
  const initiallyReadOnly = useRef(readOnly);

  useEffect(() => {
    const parent = host.current;
    if (parent === null) return undefined;
    // Undo only what this window typed, never the others' edits.
    const undoManager = new Y.UndoManager(text);
    const instance = new EditorView({
      parent,
      state: EditorState.create({
        doc: text.toString(),
        extensions: [
          minimalSetup,
          EditorView.lineWrapping,
          EditorView.contentAttributes.of({ 'aria-label': 'Scene text (Fountain)' }),
          namesAlwaysVisible,
          access.current.of(editable(initiallyReadOnly.current)),
          yCollab(text, awareness, { undoManager }),
        ],
      }),
    });
    view.current = instance;
    return () => {
      view.current = null;
      instance.destroy();
      undoManager.destroy();
    };
  }, [text, awareness]);

  useEffect(() => {
    view.current?.dispatch({ effects: access.current.reconfigure(editable(readOnly)) });
  }, [readOnly]);

  return <div ref={host} className="scene-editor" data-readonly={readOnly} />;
}

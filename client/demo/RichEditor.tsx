import { Editor } from '@tiptap/core';
import Bold from '@tiptap/extension-bold';
import Collaboration from '@tiptap/extension-collaboration';
import CollaborationCaret from '@tiptap/extension-collaboration-caret';
import Document from '@tiptap/extension-document';
import Italic from '@tiptap/extension-italic';
import Paragraph from '@tiptap/extension-paragraph';
import Text from '@tiptap/extension-text';
import { useEffect, useRef, useState } from 'react';
import type { Awareness } from 'y-protocols/awareness';
import type * as Y from 'yjs';

interface RichEditorProps {
  fragment: Y.XmlFragment;
  awareness: Awareness;
  readOnly: boolean;
}

interface Marks {
  bold: boolean;
  italic: boolean;
}

/**
 * Tiptap bound to a Y.XmlFragment (y-tiptap, Tiptap's fork of y-prosemirror): paragraphs
 * with bold and italic marks, which Yjs stores as formatting attributes of Y.XmlText. The
 * carets (CollaborationCaret) show each writer's name at all times.
 */
export function RichEditor({ fragment, awareness, readOnly }: RichEditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const [editor, setEditor] = useState<Editor | null>(null);
  const [marks, setMarks] = useState<Marks>({ bold: false, italic: false });
  const initiallyReadOnly = useRef(readOnly);

  useEffect(() => {
    const parent = host.current;
    if (parent === null) return undefined;
    const instance = new Editor({
      element: parent,
      editable: !initiallyReadOnly.current,
      extensions: [
        Document,
        Paragraph,
        Text,
        Bold,
        Italic,
        // Collaboration brings its own undo (of this window's edits only).
        Collaboration.configure({ fragment }),
        // It announces `user` on creation: hand it what useAwarenessUser announced already.
        CollaborationCaret.configure({
          provider: { awareness },
          user: (awareness.getLocalState()?.['user'] as Record<string, unknown> | undefined) ?? {},
        }),
      ],
      editorProps: { attributes: { 'aria-label': 'Rich text', class: 'rich-content' } },
    });
    const onTransaction = () => setMarks({ bold: instance.isActive('bold'), italic: instance.isActive('italic') });
    instance.on('transaction', onTransaction);
    setEditor(instance);
    return () => {
      instance.off('transaction', onTransaction);
      instance.destroy();
      setEditor(null);
    };
  }, [fragment, awareness]);

  useEffect(() => {
    editor?.setEditable(!readOnly);
  }, [editor, readOnly]);

  return (
    <div className="rich-editor">
      <div className="toolbar" role="toolbar" aria-label="Formatting">
        <button
          type="button"
          aria-pressed={marks.bold}
          disabled={readOnly || editor === null}
          onMouseDown={(event) => event.preventDefault()}
          onClick={() => editor?.chain().focus().toggleBold().run()}
        >
          <strong>B</strong>
        </button>
        <button
          type="button"
          aria-pressed={marks.italic}
          disabled={readOnly || editor === null}
          onMouseDown={(event) => event.preventDefault()}
          onClick={() => editor?.chain().focus().toggleItalic().run()}
        >
          <em>I</em>
        </button>
        <span className="hint">Ctrl+B, Ctrl+I</span>
      </div>
      <div ref={host} className="rich-host" />
    </div>
  );
}

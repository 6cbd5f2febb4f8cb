import { useEffect, useMemo, useState } from 'react';
import type * as Y from 'yjs';

import { parseEmphasis, parseFountain, type Block } from './fountain.js';

interface ScreenplayPreviewProps {
  text: Y.Text;
}

/** The scene as a printed screenplay page, re-read from the Y.Text at most once a frame. */
export function ScreenplayPreview({ text }: ScreenplayPreviewProps) {
  const [source, setSource] = useState(() => text.toString());

  useEffect(() => {
    let frame: number | null = null;
    const onChange = () => {
      // A paste or a remote batch is many events: lay the page out once per frame.
      frame ??= requestAnimationFrame(() => {
        frame = null;
        setSource(text.toString());
      });
    };
    text.observe(onChange);
    setSource(text.toString());
    return () => {
      text.unobserve(onChange);
      if (frame !== null) cancelAnimationFrame(frame);
    };
  }, [text]);

  const blocks = useMemo(() => parseFountain(source), [source]);

  return (
    <section className="screenplay" aria-label="Formatted screenplay">
      <div className="page">
        {blocks.map((block, index) => (
          <BlockView key={index} block={block} />
        ))}
      </div>
    </section>
  );
}

function BlockView({ block }: { block: Block }) {
  if (block.type === 'page-break') return <hr className="fountain-page-break" data-fountain="page-break" />;
  return (
    <p className={`fountain-${block.type}`} data-fountain={block.type}>
      {parseEmphasis(block.text).map((span, index) => {
        const className = [span.bold && 'bold', span.italic && 'italic', span.underline && 'underline']
          .filter(Boolean)
          .join(' ');
        return (
          <span key={index} className={className === '' ? undefined : className}>
            {span.text}
          </span>
        );
      })}
    </p>
  );
}

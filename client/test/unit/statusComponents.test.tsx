import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';

import type { ConnectionStatus } from '../../src/provider.js';
import { CollaborationStatusDot, CollaborationStatusIndicator, STATUS_APPEARANCE } from '../../src/react/index.js';

const statuses: ConnectionStatus[] = ['connecting', 'connected', 'synced', 'offline', 'error'];

describe('CollaborationStatusIndicator', () => {
  it.each(statuses)('announces %s politely with a label a screen reader can read', (status) => {
    const html = renderToStaticMarkup(
      <CollaborationStatusIndicator status={status} participantCount={3} onReconnect={() => {}} />,
    );
    expect(html).toContain('role="status"');
    expect(html).toContain('aria-live="polite"');
    expect(html).toContain(`aria-label="Collaboration status: ${STATUS_APPEARANCE[status].label}, 3 participants"`);
    expect(html).toContain(`color:${STATUS_APPEARANCE[status].color}`);
  });

  it('offers a reconnect button only when offline or in error', () => {
    const button = (status: ConnectionStatus) =>
      renderToStaticMarkup(<CollaborationStatusIndicator status={status} onReconnect={() => {}} />).includes('<button');
    expect(statuses.filter(button)).toEqual(['offline', 'error']);
    expect(renderToStaticMarkup(<CollaborationStatusIndicator status="offline" />)).not.toContain('<button');
  });

  it('says why in error, and counts one participant in the singular', () => {
    const html = renderToStaticMarkup(
      <CollaborationStatusIndicator
        status="error"
        participantCount={1}
        error={{ code: 'forbidden', message: 'no access to this scene' }}
      />,
    );
    expect(html).toContain('Connection error: no access to this scene');
    expect(html).toContain('1 participant');
    expect(html).not.toContain('1 participants');
  });
});

describe('CollaborationStatusDot', () => {
  it('is a labelled, coloured image', () => {
    const html = renderToStaticMarkup(<CollaborationStatusDot status="synced" size={8} />);
    expect(html).toContain('role="img"');
    expect(html).toContain('aria-label="Collaboration synced"');
    expect(html).toContain(`background-color:${STATUS_APPEARANCE.synced.color}`);
    expect(html).toContain('width:8px');
  });
});

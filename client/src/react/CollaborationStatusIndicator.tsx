import type { CSSProperties } from 'react';

import type { ConnectionError, ConnectionStatus } from '../provider.js';
import { CollaborationStatusDot } from './CollaborationStatusDot.js';
import { canReconnect, STATUS_APPEARANCE } from './statusAppearance.js';

export interface CollaborationStatusIndicatorProps {
  status: ConnectionStatus;
  /** People in the scene (the provider's `participants.length`); hidden when undefined. */
  participantCount?: number;
  /** Shown as a button while offline or in error. */
  onReconnect?: () => void;
  /** Its message is shown while in error or unauthorized (e.g. no access to the scene). */
  error?: ConnectionError | null;
  className?: string;
}

const containerStyle: CSSProperties = {
  display: 'inline-flex',
  alignItems: 'center',
  gap: '0.5em',
  fontSize: '0.875rem',
};

const buttonStyle: CSSProperties = {
  font: 'inherit',
  padding: '0.125em 0.625em',
  borderRadius: '0.375em',
  border: '1px solid currentColor',
  background: 'transparent',
  cursor: 'pointer',
};

function participantsText(count: number): string {
  return count === 1 ? '1 participant' : `${count} participants`;
}

/**
 * The connection status, colour-coded, with the number of participants and a reconnect
 * button when there is something to retry. The status text is a polite live region, so a
 * screen reader hears "Offline" without the focus moving; the button stays outside it so
 * it is not read out on every change.
 */
export function CollaborationStatusIndicator({
  status,
  participantCount,
  onReconnect,
  error,
  className,
}: CollaborationStatusIndicatorProps) {
  const { color, label } = STATUS_APPEARANCE[status];
  const detail = (status === 'error' || status === 'unauthorized') && error ? `: ${error.message || error.code}` : '';
  const people = participantCount === undefined ? '' : `, ${participantsText(participantCount)}`;
  return (
    <div className={className} style={containerStyle} data-status={status}>
      <div
        role="status"
        aria-live="polite"
        aria-label={`Collaboration status: ${label}${detail}${people}`}
        style={{ ...containerStyle, color }}
      >
        <CollaborationStatusDot status={status} />
        <span>
          {label}
          {detail}
        </span>
        {participantCount !== undefined && (
          <span style={{ color: '#374151' }} title={participantsText(participantCount)}>
            · {participantsText(participantCount)}
          </span>
        )}
      </div>
      {onReconnect !== undefined && canReconnect(status) && (
        <button type="button" onClick={onReconnect} aria-label="Reconnect to the collaboration server" style={buttonStyle}>
          Reconnect
        </button>
      )}
    </div>
  );
}

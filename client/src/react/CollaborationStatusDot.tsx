import type { CSSProperties } from 'react';

import type { ConnectionStatus } from '../provider.js';
import { STATUS_APPEARANCE } from './statusAppearance.js';

export interface CollaborationStatusDotProps {
  status: ConnectionStatus;
  /** Diameter in px (default 10). */
  size?: number;
  className?: string;
}

/** A coloured dot for tight spaces; its label is the status, for screen readers and on hover. */
export function CollaborationStatusDot({ status, size = 10, className }: CollaborationStatusDotProps) {
  const { color, label } = STATUS_APPEARANCE[status];
  const style: CSSProperties = {
    display: 'inline-block',
    width: size,
    height: size,
    borderRadius: '50%',
    backgroundColor: color,
    flexShrink: 0,
  };
  return (
    <span
      role="img"
      aria-label={`Collaboration ${label.toLowerCase()}`}
      title={label}
      data-status={status}
      className={className}
      style={style}
    />
  );
}

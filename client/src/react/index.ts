export { useYjsCollaboration } from './useYjsCollaboration.js';
export type { UseYjsCollaborationOptions, UseYjsCollaborationResult } from './useYjsCollaboration.js';
export { CollaborationStatusIndicator } from './CollaborationStatusIndicator.js';
export type { CollaborationStatusIndicatorProps } from './CollaborationStatusIndicator.js';
export { CollaborationStatusDot } from './CollaborationStatusDot.js';
export type { CollaborationStatusDotProps } from './CollaborationStatusDot.js';
export { STATUS_APPEARANCE, canReconnect, type StatusAppearance } from './statusAppearance.js';

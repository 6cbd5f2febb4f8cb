/** How each connection status looks and reads, shared by the indicator and the dot. */

import type { ConnectionStatus } from '../provider.js';

export interface StatusAppearance {
  color: string;
  label: string;
}

export const STATUS_APPEARANCE: Record<ConnectionStatus, StatusAppearance> = {
  synced: { color: '#15803d', label: 'Synced' },
  connected: { color: '#1d4ed8', label: 'Syncing' },
  connecting: { color: '#b45309', label: 'Connecting' },
  offline: { color: '#6b7280', label: 'Offline' },
  error: { color: '#b91c1c', label: 'Connection error' },
  unauthorized: { color: '#b91c1c', label: 'Not authorized' },
};

/** The states a person can do something about: the provider waits or has stopped. */
export function canReconnect(status: ConnectionStatus): boolean {
  return status === 'offline' || status === 'error' || status === 'unauthorized';
}

import { useEffect, useState } from 'react';
import type { Awareness } from 'y-protocols/awareness';

import { chooseSlot, colorForSlot, lightColor } from './colors.js';

/** What each window announces in its awareness `user` field (what the editors' carets read). */
export interface AwarenessUser {
  name: string;
  color: string;
  colorLight: string;
  slot: number;
}

export interface AwarenessUsers {
  /** This window's user, once announced. */
  self: AwarenessUser | null;
  /** The colour each name announced (this window's included). */
  colors: ReadonlyMap<string, string>;
}

function readUser(state: Record<string, unknown> | null | undefined): Partial<AwarenessUser> | null {
  const user = state?.['user'];
  return typeof user === 'object' && user !== null ? (user as Partial<AwarenessUser>) : null;
}

/**
 * Announces `name` with a colour slot nobody else in the scene holds (colors.ts), moves to
 * another slot when a window with a lower client id claims the same one, and reports the
 * colours everyone announced.
 */
export function useAwarenessUser(awareness: Awareness | null, name: string): AwarenessUsers {
  const [users, setUsers] = useState<AwarenessUsers>({ self: null, colors: new Map() });

  useEffect(() => {
    if (awareness === null) return undefined;
    const reconcile = () => {
      const others = new Map<number, number>();
      const colors = new Map<string, string>();
      for (const [id, state] of awareness.getStates()) {
        const user = readUser(state);
        if (user === null) continue;
        if (id !== awareness.clientID && typeof user.slot === 'number') others.set(id, user.slot);
        if (typeof user.name === 'string' && typeof user.color === 'string') colors.set(user.name, user.color);
      }
      const local = readUser(awareness.getLocalState());
      const held = local?.name === name && typeof local.slot === 'number' ? local.slot : null;
      const slot = chooseSlot(awareness.clientID, held, others);
      const color = colorForSlot(slot);
      if (local?.name !== name || local.slot !== slot || local.color !== color) {
        // Emits `change` at once, which runs this again with the new state.
        awareness.setLocalStateField('user', { name, color, colorLight: lightColor(color), slot });
        return;
      }
      setUsers({ self: { name, color, colorLight: lightColor(color), slot }, colors });
    };
    awareness.on('change', reconcile);
    reconcile();
    return () => awareness.off('change', reconcile);
  }, [awareness, name]);

  return users;
}

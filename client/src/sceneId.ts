/**
 * The scene ids the server accepts, checked before connecting: the authorizer refuses any
 * other id with the same bare 401 as a bad token (functions/collab/auth/handshake.py,
 * SCENE_ID_PATTERN), which a browser cannot tell from a network failure.
 */

/** The server's rule: a scene id becomes a DynamoDB key and a Redis hash tag. */
export const SCENE_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/** Why the server would refuse this scene id, or null when it is acceptable. */
export function sceneIdProblem(sceneId: string): string | null {
  if (SCENE_ID_PATTERN.test(sceneId)) return null;
  if (sceneId.length === 0) return 'the scene id is empty';
  if (sceneId.length > 128) return `the scene id has ${sceneId.length} characters; at most 128 are allowed`;
  const bad = [...new Set(sceneId.replace(/[A-Za-z0-9_.:-]/g, ''))].map((c) => JSON.stringify(c)).join(' ');
  return `the scene id may hold only letters, digits and _ . : - (not ${bad})`;
}

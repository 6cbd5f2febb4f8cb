/**
 * Wire protocol version 1 (docs/design.md §2): every frame is a JSON text object. Clients name an
 * `action` (API Gateway routes on it); the server names a `type`. Yjs payloads travel as
 * base64 y-protocols messages in `data`.
 */

/** The subprotocol a browser offers (with the JWT as the second entry) instead of `?token=`. */
export const SUBPROTOCOL = 'collab.v1';

export type Role = 'owner' | 'editor' | 'viewer';

export type ErrorCode =
  | 'bad_request'
  | 'invalid_update'
  | 'too_large'
  | 'forbidden'
  | 'token_expired'
  | 'internal';

export interface Participant {
  connectionId: string;
  userId: string;
  userName: string;
}

export interface ChunkFields {
  id: string;
  seq: number;
  total: number;
  data: string;
}

export type ClientFrame =
  /** `combined`: answer with one `synced` frame instead of four. */
  | { action: 'sync'; data: string; combined?: boolean }
  /** `awareness`: the awareness change of the same moment, sent in the same frame. */
  | { action: 'update'; data: string; awareness?: string }
  | { action: 'awareness'; data: string }
  | { action: 'ping' }
  | ({ action: 'chunk' } & ChunkFields);

export interface ConnectedMessage {
  type: 'connected';
  sceneId: string;
  connectionId: string;
  user: { userId: string; userName: string };
  role: Role;
  participants: Participant[];
}

export interface ServerErrorMessage {
  type: 'error';
  /** One of {@link ErrorCode}; kept as a string so a newer server's codes still parse. */
  code: string;
  message: string;
  action?: string;
  id?: string;
}

/** One saved version of a scene, as the HTTP API lists it and the `version` message names it. */
export interface VersionInfo {
  versionId: string;
  /** Empty for a version saved without one. */
  label: string;
  /** ISO 8601, UTC. */
  createdAt: string;
  /** The user id of whoever saved it (for an automatic version, whose edit or leave caused it). */
  createdBy: string;
  bytes: number;
  /** Saved by the server (while editing, on the last leave, before a restore), not on request. */
  auto: boolean;
}

/**
 * To every member when a version of the scene is saved (`created`) or restored
 * (`restored`; the restored content arrived before it as an ordinary `update`).
 */
export interface VersionMessage {
  type: 'version';
  /** A string, so a newer server's events still parse; `created` and `restored` today. */
  event: string;
  version: VersionInfo;
  /** With `restored`: the id of the version saved automatically just before the restore. */
  savedBefore?: string;
}

/** Per Yjs client id, the milliseconds since the server last stored its awareness state. */
export type AwarenessAges = Record<string, number>;

/** The answer to a `sync` sent with `combined: true`: `connected`, SyncStep2, SyncStep1 and awareness in one. */
export interface SyncedMessage extends Omit<ConnectedMessage, 'type'> {
  type: 'synced';
  /** SyncStep2: what we lack. */
  data: string;
  /** SyncStep1: the server's state vector (not sent to viewers). */
  stateVector?: string;
  awareness?: string;
  ages?: AwarenessAges;
}

export type ServerMessage =
  | { type: 'sync'; data: string }
  | { type: 'update'; data: string; awareness?: string; ages?: AwarenessAges }
  | { type: 'awareness'; data: string; ages?: AwarenessAges }
  | ConnectedMessage
  | SyncedMessage
  | { type: 'participant-joined'; participant: Participant }
  /** `participants` (optional) lists every leave of one eviction; `participant` is the first. */
  | { type: 'participant-left'; participant: Participant; participants: Participant[] }
  | { type: 'pong' }
  | VersionMessage
  | ServerErrorMessage
  | ({ type: 'chunk' } & ChunkFields);

/** A frame from the server that is not what the protocol says it should be. */
export class FrameError extends Error {
  override name = 'FrameError';
}

export function encodeFrame(frame: ClientFrame): string {
  return JSON.stringify(frame);
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(obj: JsonObject, field: string): string {
  const value = obj[field];
  if (typeof value !== 'string') throw new FrameError(`'${field}' is not a string`);
  return value;
}

function optionalStr(obj: JsonObject, field: string): string | undefined {
  return obj[field] === undefined ? undefined : str(obj, field);
}

function int(obj: JsonObject, field: string): number {
  const value = obj[field];
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new FrameError(`'${field}' is not an integer`);
  }
  return value;
}

/**
 * The `ages` of an awareness part, leniently: they only tune timeouts, so a bad entry is
 * left out and a negative age (two invocations' clocks read in the other order) counts
 * as 0, and the frame's edit and states are never dropped for them.
 */
function ages(obj: JsonObject): AwarenessAges | undefined {
  const value = obj['ages'];
  if (!isObject(value)) return undefined;
  const found: AwarenessAges = {};
  for (const [client, age] of Object.entries(value)) {
    if (typeof age === 'number' && Number.isFinite(age)) found[client] = Math.max(0, age);
  }
  return found;
}

/** Copies the optional fields that are present (exactOptionalPropertyTypes: never `undefined`). */
function withOptional<T extends object>(message: T, fields: Record<string, unknown>): T {
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined) (message as Record<string, unknown>)[key] = value;
  }
  return message;
}

function participant(value: unknown): Participant {
  if (!isObject(value)) throw new FrameError('participant is not an object');
  return {
    connectionId: str(value, 'connectionId'),
    userId: str(value, 'userId'),
    userName: str(value, 'userName'),
  };
}

function versionInfo(value: unknown): VersionInfo {
  if (!isObject(value)) throw new FrameError("'version' is not an object");
  const bytes = int(value, 'bytes');
  const auto = value['auto'];
  if (typeof auto !== 'boolean') throw new FrameError("'auto' is not a boolean");
  return {
    versionId: str(value, 'versionId'),
    label: str(value, 'label'),
    createdAt: str(value, 'createdAt'),
    createdBy: str(value, 'createdBy'),
    bytes,
    auto,
  };
}

function connected(obj: JsonObject): ConnectedMessage {
  const user = obj['user'];
  const participants = obj['participants'];
  if (!isObject(user)) throw new FrameError("'user' is not an object");
  if (!Array.isArray(participants)) throw new FrameError("'participants' is not an array");
  return {
    type: 'connected',
    sceneId: str(obj, 'sceneId'),
    connectionId: str(obj, 'connectionId'),
    user: { userId: str(user, 'userId'), userName: str(user, 'userName') },
    role: str(obj, 'role') as Role,
    participants: participants.map(participant),
  };
}

/**
 * Parses one server frame. Returns `undefined` for a `type` this client does not know, so a
 * newer server can add messages without breaking older clients; throws {@link FrameError}
 * for a frame that is not JSON or lacks a field its type requires.
 */
export function parseServerMessage(text: string): ServerMessage | undefined {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    throw new FrameError('frame is not JSON');
  }
  if (!isObject(obj)) throw new FrameError('frame is not a JSON object');
  const type = obj['type'];
  switch (type) {
    case 'sync':
      return { type, data: str(obj, 'data') };
    case 'update':
      return withOptional({ type, data: str(obj, 'data') }, { awareness: optionalStr(obj, 'awareness'), ages: ages(obj) });
    case 'awareness':
      return withOptional({ type, data: str(obj, 'data') }, { ages: ages(obj) });
    case 'connected':
      return connected(obj);
    case 'synced': {
      const { type: _connected, ...fields } = connected(obj);
      const message: SyncedMessage = { ...fields, type, data: str(obj, 'data') };
      return withOptional(message, {
        stateVector: optionalStr(obj, 'stateVector'),
        awareness: optionalStr(obj, 'awareness'),
        ages: ages(obj),
      });
    }
    case 'participant-joined':
      return { type, participant: participant(obj['participant']) };
    case 'participant-left': {
      const first = participant(obj['participant']);
      const all = obj['participants'];
      if (all !== undefined && !Array.isArray(all)) throw new FrameError("'participants' is not an array");
      return { type, participant: first, participants: all === undefined ? [first] : all.map(participant) };
    }
    case 'pong':
      return { type };
    case 'version':
      return withOptional<VersionMessage>(
        { type, event: str(obj, 'event'), version: versionInfo(obj['version']) },
        { savedBefore: optionalStr(obj, 'savedBefore') },
      );
    case 'error': {
      const message: ServerErrorMessage = {
        type,
        code: str(obj, 'code'),
        message: optionalStr(obj, 'message') ?? '',
      };
      const action = optionalStr(obj, 'action');
      const id = optionalStr(obj, 'id');
      if (action !== undefined) message.action = action;
      if (id !== undefined) message.id = id;
      return message;
    }
    case 'chunk':
      return {
        type,
        id: str(obj, 'id'),
        seq: int(obj, 'seq'),
        total: int(obj, 'total'),
        data: str(obj, 'data'),
      };
    default:
      if (typeof type !== 'string') throw new FrameError("frame has no 'type'");
      return undefined;
  }
}

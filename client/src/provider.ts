/**
 * A Yjs provider for the API Gateway WebSocket backend, shaped like y-websocket's
 * WebsocketProvider. It differs on the wire (JSON text frames, base64 payloads, chunking:
 * docs/design.md §2) and in what a serverless backend needs from a client: a fresh token on every
 * connect, reconnecting when API Gateway ends a connection, a keepalive, and a periodic
 * resync because the protocol has no acknowledgements.
 */

import { ObservableV2 } from 'lib0/observable';
import * as awarenessProtocol from 'y-protocols/awareness';
import { decodeStateVector, decodeUpdate, mergeUpdates } from 'yjs';
import type * as Y from 'yjs';

import { backoffDelay } from './backoff.js';
import { ChunkReassembler, frameMessage } from './chunking.js';
import { connectTarget, type TokenTransport } from './connectTarget.js';
import {
  encodeFrame,
  parseServerMessage,
  type ClientFrame,
  type ConnectedMessage,
  type Participant,
  type Role,
  type ServerErrorMessage,
  type ServerMessage,
  type VersionMessage,
} from './framing.js';
import { OutgoingBatch } from './outgoing.js';
import { ParticipantRoster } from './participants.js';
import {
  applyAwarenessData,
  applySyncData,
  awarenessData,
  SYNC_STEP1,
  SYNC_STEP2,
  syncStep1Data,
  updateData,
} from './payloads.js';
import { browserOffline, fetchProbe, probeUrl, refusalMessage, type ReachabilityProbe } from './refusals.js';
import { SavedState } from './savedState.js';
import { sceneIdProblem } from './sceneId.js';
import {
  defaultWebSocket,
  OPEN,
  type CloseEventLike,
  type WebSocketConstructor,
  type WebSocketLike,
} from './websocket.js';

/**
 * `error`: the server refused access (`forbidden`) or the scene id is invalid;
 * `unauthorized`: the upgrade was refused several times in a row while the server was
 * reachable (a bad or expired token, a token for another scene). Neither reconnects by itself.
 */
export type ConnectionStatus = 'connecting' | 'connected' | 'synced' | 'offline' | 'error' | 'unauthorized';

/** What went wrong with a connection: a socket error, no token, or the server's refusal. */
export interface ConnectionError {
  /**
   * The provider stopped on: `forbidden` (no access), `unauthorized` (upgrades refused),
   * `invalid_scene_id` (not sent at all). It keeps retrying after: `socket_error`,
   * `token_unavailable` (`getToken` threw).
   */
  code: string;
  message: string;
  cause?: unknown;
}

/** A `version` message from the server (docs/design.md §2): a version was saved or restored. */
export type VersionEvent = Omit<VersionMessage, 'type'>;

/** An `error` message from the server (docs/design.md §2), e.g. `invalid_update` or `too_large`. */
export type ServerError = Omit<ServerErrorMessage, 'type'>;

export interface ApiGatewayProviderOptions {
  /** A fixed JWT. Prefer `getToken` for anything that lives longer than the token. */
  token?: string;
  /** Called before every connect and reconnect, so an expired token is replaced. */
  getToken?: () => string | Promise<string>;
  /** Defaults to a new Awareness for `doc`, destroyed with the provider. */
  awareness?: awarenessProtocol.Awareness;
  /** Extra query parameters for the connect URL. */
  params?: Record<string, string>;
  /** A WebSocket implementation where there is no global one (Node 20: the `ws` package). */
  WebSocketPolyfill?: WebSocketConstructor;
  /** Connect at once (default true), or wait for `connect()`. */
  connect?: boolean;
  /** The longest wait between reconnect attempts, in ms (default 10,000). */
  maxBackoffTime?: number;
  /** The ceiling of the first reconnect wait, in ms (default 200). */
  initialBackoffTime?: number;
  /** Send `sync` again this often, in ms (default 60,000; 0 disables). */
  resyncInterval?: number;
  /** Send `ping` when no `sync` went out for this long, in ms, against API Gateway's 10-minute idle timeout (default 300,000; 0 disables). */
  pingInterval?: number;
  /**
   * Reconnect when nothing arrives for this long, in ms: a socket whose network vanished
   * (a laptop lid, a mobile hand-over) may never report a close. Default: long enough for
   * two resync (or ping) answers to have been missed.
   */
  silenceTimeout?: number;
  /** Where the JWT goes: `query` (default) or `subprotocol` (`['collab.v1', token]`). */
  tokenTransport?: TokenTransport;
  /**
   * Stop with status `unauthorized` after this many upgrades in a row closed before they
   * opened, if the server still answers HTTP (default 4; 0: retry for ever). A browser
   * sees a refusal (401) and a network failure alike; while `navigator.onLine` is false
   * a failed attempt is not counted.
   */
  maxRefusedUpgrades?: number;
  /**
   * After stopping with `unauthorized`, try again this long later, in ms (default 60,000;
   * 0: never, until `connect()`). A browser cannot tell a refusal from a server error
   * (a throttled authorizer, a deploy) that answers the upgrade with 5xx: this keeps a
   * short outage from stopping every client for good, at one round of attempts a minute.
   */
  unauthorizedRetryDelay?: number;
  /**
   * Asked, once the refusals reach `maxRefusedUpgrades`, whether the endpoint answers
   * HTTP at all (given the URL with http(s) for ws(s)); false means a network failure and
   * the provider keeps retrying. Default: a `no-cors` fetch. `false`: no probe, every such
   * close counts as a refusal.
   */
  probeServer?: ReachabilityProbe | false;
  /** Ask the server whether local edits are stored this long after the last one, in ms (default 1,000). */
  savedCheckDelay?: number;
  /** ...but no later than this after the first unchecked edit while typing goes on, in ms (default 10,000). */
  savedCheckMaxWait?: number;
  /**
   * Send an awareness change that comes without an edit (a cursor or selection move) at
   * most this often, in ms, the latest state winning (default 80). An edit never waits,
   * and carries the awareness change of the same moment in the same frame.
   */
  awarenessThrottle?: number;
  /**
   * Send local edits at most this often, in ms (default 0: every edit leaves at the end of
   * its task). Leading edge: an edit after a pause leaves at once, the ones typed within
   * the next `updateThrottle` ms leave merged in one frame when it ends. Each frame is a
   * WebSocket message in and one out per peer, which API Gateway bills: a busy room's
   * messages fall with it, and peers see a burst's keystrokes up to this much later
   * (docs/cost.md, "Fewer frames while typing").
   */
  updateThrottle?: number;
}

export interface ProviderEvents {
  status: (event: { status: ConnectionStatus }) => void;
  sync: (synced: boolean) => void;
  'connection-error': (error: ConnectionError, provider: ApiGatewayProvider) => void;
  'connection-close': (event: CloseEventLike | null, provider: ApiGatewayProvider) => void;
  participants: (participants: readonly Participant[], provider: ApiGatewayProvider) => void;
  /** Whether every local edit is stored durably on the server; on every change. */
  saved: (saved: boolean, provider: ApiGatewayProvider) => void;
  /** The role the server's `connected` message gave; on every change. */
  role: (role: Role, provider: ApiGatewayProvider) => void;
  'server-error': (error: ServerError, provider: ApiGatewayProvider) => void;
  /**
   * A version of the scene was saved (`event: 'created'`) or restored (`'restored'`), by
   * anyone: through the HTTP API or automatically. A restore's content has been applied to
   * the doc before this fires. Versions saved while disconnected are not replayed: list
   * them through the HTTP API (`GET /scenes/{id}/versions`) after a reconnect.
   */
  version: (event: VersionEvent, provider: ApiGatewayProvider) => void;
  /** A server frame this client could not understand; it was dropped. */
  'protocol-error': (error: Error, provider: ApiGatewayProvider) => void;
}

// The longest the design allows (30-60 s): with presence in rosters (docs/presence.md), a
// quiet room's resync answers are a sixth of its messages.
const DEFAULT_RESYNC_INTERVAL = 60_000;
const DEFAULT_PING_INTERVAL = 5 * 60_000;
const DEFAULT_MAX_BACKOFF = 10_000;
const DEFAULT_INITIAL_BACKOFF = 200;
const DEFAULT_MAX_REFUSED_UPGRADES = 4;
const DEFAULT_UNAUTHORIZED_RETRY_DELAY = 60_000;
const DEFAULT_SAVED_CHECK_DELAY = 1_000;
const DEFAULT_SAVED_CHECK_MAX_WAIT = 10_000;
const DEFAULT_AWARENESS_THROTTLE = 80;

/** A refusal stops reconnecting until `connect()`; its status is shown meanwhile. */
interface Refusal {
  error: ConnectionError;
  status: 'error' | 'unauthorized';
}

type AwarenessChange = { added: number[]; updated: number[]; removed: number[] };

export class ApiGatewayProvider extends ObservableV2<ProviderEvents> {
  readonly serverUrl: string;
  readonly sceneId: string;
  readonly doc: Y.Doc;
  readonly awareness: awarenessProtocol.Awareness;
  /** Extra query parameters; read on every connect, so changes apply from the next one. */
  params: Record<string, string>;

  /** The socket is open. */
  wsconnected = false;
  /** A connect is under way (fetching a token or opening the socket). */
  wsconnecting = false;
  /** Whether the provider wants to be connected (false after `disconnect()` or a refusal). */
  shouldConnect = false;
  ws: WebSocketLike | null = null;
  status: ConnectionStatus = 'offline';
  /** Failed attempts since the server last admitted this client; drives the backoff. */
  unsuccessfulReconnects = 0;
  /** Upgrades in a row that closed before they opened (refused, or no network). */
  refusedUpgrades = 0;

  /** From the server's `connected` message of the current connection. */
  role: Role | null = null;
  connectionId: string | null = null;
  user: ConnectedMessage['user'] | null = null;
  /** Everyone in the scene, this connection included, as the server announces them. */
  get participants(): readonly Participant[] {
    return this.roster.participants;
  }

  private _synced = false;
  private destroyed = false;
  /** Set when the server refused access: no reconnect until `connect()` is called again. */
  private refusal: Refusal | null = null;
  /** The server answered `connected` on the current socket (it knows our role). */
  private admitted = false;
  /** Bumped by every connect and disconnect, so a token that arrives late is dropped. */
  private generation = 0;
  private chunkCounter = 0;
  private lastMessageAt = 0;
  /** When we last sent a frame the server answers (a `sync` or a `ping`). */
  private lastRequestAt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private intervals: ReturnType<typeof setInterval>[] = [];
  private readonly reassembler = new ChunkReassembler();
  private readonly roster = new ParticipantRoster();
  private readonly ownsAwareness: boolean;
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly tokenSource: () => Promise<string>;
  private readonly tokenTransport: TokenTransport;
  private readonly maxBackoffTime: number;
  private readonly initialBackoffTime: number;
  private readonly resyncInterval: number;
  private readonly pingInterval: number;
  private readonly silenceTimeout: number;
  private readonly unloadTarget: Pick<Window, 'addEventListener' | 'removeEventListener'> | null;
  private stateBeforeHide: Record<string, unknown> | null = null;
  private readonly maxRefusedUpgrades: number;
  private readonly unauthorizedRetryDelay: number;
  private unauthorizedRetryTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly probe: ReachabilityProbe | null;
  /** The token of the latest attempt, for the reason given with `unauthorized`. */
  private lastToken: string | null = null;
  private readonly savedState = new SavedState();
  private lastSaved = true;
  private readonly savedCheckDelay: number;
  private readonly savedCheckMaxWait: number;
  private savedCheckTimer: ReturnType<typeof setTimeout> | null = null;
  /** The latest a pending check may fire: the first unchecked edit + savedCheckMaxWait. */
  private savedCheckDueBy = 0;
  /** Checks in a row that found edits still missing; spaces the next one out. */
  private savedCheckRetries = 0;
  private readonly outgoing: OutgoingBatch;

  constructor(serverUrl: string, sceneId: string, doc: Y.Doc, options: ApiGatewayProviderOptions = {}) {
    super();
    this.serverUrl = serverUrl;
    this.sceneId = sceneId;
    this.doc = doc;
    this.ownsAwareness = options.awareness === undefined;
    this.awareness = options.awareness ?? new awarenessProtocol.Awareness(doc);
    this.params = options.params ?? {};
    this.WebSocketImpl = options.WebSocketPolyfill ?? defaultWebSocket();
    this.tokenSource = tokenSource(options);
    this.tokenTransport = options.tokenTransport ?? 'query';
    this.maxBackoffTime = options.maxBackoffTime ?? DEFAULT_MAX_BACKOFF;
    this.initialBackoffTime = options.initialBackoffTime ?? DEFAULT_INITIAL_BACKOFF;
    this.resyncInterval = options.resyncInterval ?? DEFAULT_RESYNC_INTERVAL;
    this.pingInterval = options.pingInterval ?? DEFAULT_PING_INTERVAL;
    this.silenceTimeout = options.silenceTimeout ?? defaultSilenceTimeout(this.resyncInterval, this.pingInterval);
    this.maxRefusedUpgrades = options.maxRefusedUpgrades ?? DEFAULT_MAX_REFUSED_UPGRADES;
    this.unauthorizedRetryDelay = options.unauthorizedRetryDelay ?? DEFAULT_UNAUTHORIZED_RETRY_DELAY;
    this.probe = options.probeServer === false ? null : (options.probeServer ?? fetchProbe);
    this.savedCheckDelay = options.savedCheckDelay ?? DEFAULT_SAVED_CHECK_DELAY;
    this.savedCheckMaxWait = options.savedCheckMaxWait ?? DEFAULT_SAVED_CHECK_MAX_WAIT;
    this.outgoing = new OutgoingBatch(
      this.sendLocal,
      options.awarenessThrottle ?? DEFAULT_AWARENESS_THROTTLE,
      Date.now,
      Math.max(0, options.updateThrottle ?? 0),
    );

    this.savedState.recordExisting(doc);
    this.lastSaved = this.savedState.saved;
    this.doc.on('update', this.onDocUpdate);
    this.awareness.on('update', this.onAwarenessUpdate);
    this.unloadTarget = typeof window !== 'undefined' && typeof window.addEventListener === 'function' ? window : null;
    this.unloadTarget?.addEventListener('pagehide', this.onPageHide);
    this.unloadTarget?.addEventListener('pageshow', this.onPageShow);
    if (options.connect !== false) this.connect();
  }

  /** The server's SyncStep2 of the current connection has been applied. */
  get synced(): boolean {
    return this._synced;
  }

  set synced(state: boolean) {
    if (this._synced === state) return;
    this._synced = state;
    this.emit('sync', [state]);
    if (state) this.setStatus('synced');
  }

  /**
   * Local edits (transactions) not yet known to be stored durably on the server. A
   * viewer's edits are never sent, so never counted.
   */
  get unsyncedChanges(): number {
    return this.savedState.unsyncedChanges;
  }

  /** Every local edit is stored durably on the server (`unsyncedChanges === 0`). */
  get saved(): boolean {
    return this.savedState.saved;
  }

  /** Connect, or reconnect after `disconnect()` or a refusal. */
  connect(): void {
    if (this.destroyed) return;
    const problem = sceneIdProblem(this.sceneId);
    if (problem !== null) {
      // The server would refuse it with the same 401 as a bad token: say why, send nothing.
      this.stop({ error: { code: 'invalid_scene_id', message: problem }, status: 'error' });
      return;
    }
    this.shouldConnect = true;
    this.refusal = null;
    this.refusedUpgrades = 0;
    if (this.ws !== null || this.wsconnecting) return;
    this.clearReconnectTimer();
    void this.openSocket();
  }

  /** Close the connection and stay offline until `connect()`. The doc keeps local edits. */
  disconnect(): void {
    this.shouldConnect = false;
    this.generation += 1;
    this.wsconnecting = false;
    this.clearReconnectTimer();
    this.clearSavedCheck();
    const ws = this.ws;
    if (ws !== null) {
      // Tell the others we left without dropping our own state: it comes back on connect.
      if (this.wsconnected) {
        this.outgoing.flush(); // edits of this task first
        this.send({ action: 'awareness', data: awarenessData(this.awareness, [this.doc.clientID], new Map()) });
      }
      this.socketGone(ws, null);
      closeQuietly(ws);
    } else if (this.refusal === null) {
      this.setStatus('offline');
    }
  }

  override destroy(): void {
    if (this.destroyed) return;
    // Removing the local state fires an awareness update, which tells the others while the
    // socket is still open.
    awarenessProtocol.removeAwarenessStates(this.awareness, [this.doc.clientID], 'provider destroyed');
    this.disconnect();
    this.destroyed = true;
    this.unloadTarget?.removeEventListener('pagehide', this.onPageHide);
    this.unloadTarget?.removeEventListener('pageshow', this.onPageShow);
    this.doc.off('update', this.onDocUpdate);
    this.awareness.off('update', this.onAwarenessUpdate);
    if (this.ownsAwareness) this.awareness.destroy();
    super.destroy();
  }

  private async openSocket(): Promise<void> {
    const generation = ++this.generation;
    this.wsconnecting = true;
    this.setStatus('connecting');
    let token: string;
    try {
      token = await this.tokenSource();
    } catch (cause) {
      if (generation !== this.generation) return;
      this.wsconnecting = false;
      this.emit('connection-error', [{ code: 'token_unavailable', message: errorMessage(cause), cause }, this]);
      this.setStatus('offline');
      this.scheduleReconnect();
      return;
    }
    if (generation !== this.generation || !this.shouldConnect) return;
    this.lastToken = token;
    const target = connectTarget(this.serverUrl, this.sceneId, token, this.params, this.tokenTransport);
    let ws: WebSocketLike;
    try {
      ws = new this.WebSocketImpl(target.url, target.protocols);
    } catch (cause) {
      this.wsconnecting = false;
      this.emit('connection-error', [{ code: 'socket_error', message: errorMessage(cause), cause }, this]);
      this.setStatus('offline');
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      if (this.ws === ws) this.onOpen();
    };
    ws.onmessage = (event) => {
      if (this.ws === ws) this.onMessage(event.data);
    };
    ws.onerror = (event) => {
      if (this.ws === ws) {
        this.emit('connection-error', [{ code: 'socket_error', message: 'WebSocket error', cause: event }, this]);
      }
    };
    ws.onclose = (event) => {
      if (this.ws === ws) this.onClose(ws, event, opened);
    };
  }

  private onOpen(): void {
    this.wsconnecting = false;
    this.wsconnected = true;
    this.refusedUpgrades = 0;
    this.lastMessageAt = Date.now();
    this.setStatus('connected');
    this.sendSync();
    const state = this.awareness.getLocalState();
    const meta = this.awareness.meta.get(this.doc.clientID);
    if (state !== null && meta !== undefined) {
      // When a previous connection ended, the server removed our state with our clock + 1,
      // and peers accept only a higher clock than that: skip one, and setLocalState adds
      // the other (onAwarenessUpdate sends it). Otherwise our cursor would stay hidden
      // until the second 15 s renewal.
      meta.clock += 1;
      this.awareness.setLocalState(state);
    }
    this.startTimers();
  }

  private onClose(ws: WebSocketLike, event: CloseEventLike, opened = true): void {
    this.socketGone(ws, event);
    if (!this.shouldConnect) return;
    if (!opened && this.maxRefusedUpgrades > 0 && !browserOffline()) {
      this.refusedUpgrades += 1;
      if (this.refusedUpgrades >= this.maxRefusedUpgrades) {
        void this.confirmRefusal();
        return;
      }
    }
    this.scheduleReconnect();
  }

  /**
   * Enough upgrades in a row closed before opening: stop with `unauthorized` if the
   * server answers HTTP (so they were refusals), else keep retrying (the network failed;
   * the next failed attempt asks again).
   */
  private async confirmRefusal(): Promise<void> {
    const generation = this.generation;
    const reachable = this.probe === null ? true : await this.probe(probeUrl(this.serverUrl));
    if (generation !== this.generation || !this.shouldConnect || this.ws !== null) return;
    if (!reachable) {
      // A network failure, not refusals: once the network is back, count afresh.
      this.refusedUpgrades = 0;
      this.scheduleReconnect();
      return;
    }
    const message = refusalMessage(this.refusedUpgrades, this.lastToken);
    this.stop({ error: { code: 'unauthorized', message }, status: 'unauthorized' });
  }

  /** Stop reconnecting, show the refusal's status and say why. */
  private stop(refusal: Refusal): void {
    this.refusal = refusal;
    this.shouldConnect = false;
    this.clearReconnectTimer();
    this.setStatus(refusal.status);
    this.emit('connection-error', [refusal.error, this]);
    if (refusal.status === 'unauthorized' && this.unauthorizedRetryDelay > 0) {
      this.unauthorizedRetryTimer = setTimeout(() => {
        this.unauthorizedRetryTimer = null;
        if (this.refusal === refusal && !this.destroyed) this.connect(); // a fresh token, a new round
      }, this.unauthorizedRetryDelay);
    }
  }

  /** Forget everything that belonged to the connection that just ended. */
  private socketGone(ws: WebSocketLike, event: CloseEventLike | null): void {
    if (this.ws !== ws) return;
    this.ws = null;
    this.wsconnected = false;
    this.wsconnecting = false;
    this.admitted = false;
    this.stopTimers();
    this.clearSavedCheck();
    this.outgoing.clear();
    this.reassembler.clear();
    // Without a connection, remote cursors would freeze where they were: drop them; the
    // next sync brings back the current ones.
    const remote = [...this.awareness.getStates().keys()].filter((client) => client !== this.doc.clientID);
    awarenessProtocol.removeAwarenessStates(this.awareness, remote, this);
    const hadParticipants = this.roster.participants.length > 0;
    this.roster.clear();
    if (hadParticipants) this.emitParticipants();
    this.synced = false;
    this.emit('connection-close', [event, this]);
    this.setStatus(this.refusal === null ? 'offline' : this.refusal.status);
  }

  private scheduleReconnect(): void {
    if (!this.shouldConnect || this.destroyed) return;
    const delay = backoffDelay(this.unsuccessfulReconnects, {
      initialDelay: this.initialBackoffTime,
      maxDelay: this.maxBackoffTime,
    });
    this.unsuccessfulReconnects += 1;
    this.clearReconnectTimer();
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.shouldConnect && this.ws === null) void this.openSocket();
    }, delay);
  }

  private clearReconnectTimer(): void {
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (this.unauthorizedRetryTimer !== null) clearTimeout(this.unauthorizedRetryTimer);
    this.unauthorizedRetryTimer = null;
  }

  private startTimers(): void {
    this.stopTimers();
    if (this.resyncInterval > 0) {
      this.intervals.push(setInterval(() => this.sendSync(), this.resyncInterval));
    }
    if (this.pingInterval > 0) {
      // Only when no resync went out meanwhile: its answer keeps the socket as busy, and a
      // quiet room's messages are its bill (docs/presence.md).
      const ping = () => {
        if (Date.now() - this.lastRequestAt >= this.pingInterval) this.sendRequest({ action: 'ping' });
      };
      this.intervals.push(setInterval(ping, this.pingInterval));
    }
    if (this.silenceTimeout > 0) {
      const check = () => {
        if (this.ws !== null && Date.now() - this.lastMessageAt > this.silenceTimeout) {
          // close() on a dead network may take minutes to report; treat it as gone now.
          const ws = this.ws;
          this.onClose(ws, { code: 4000, reason: 'no message within silenceTimeout' });
          closeQuietly(ws);
        }
      };
      this.intervals.push(setInterval(check, Math.max(1_000, this.silenceTimeout / 4)));
    }
  }

  private stopTimers(): void {
    for (const interval of this.intervals) clearInterval(interval);
    this.intervals = [];
  }

  private sendSync(): void {
    // One `synced` frame in answer instead of four: a quiet room's resyncs are most of its messages.
    this.sendRequest({ action: 'sync', data: syncStep1Data(this.doc), combined: true });
  }

  /** A frame the server answers; the silence check counts on those answers. */
  private sendRequest(frame: ClientFrame): void {
    this.lastRequestAt = Date.now();
    this.send(frame);
  }

  /** Where OutgoingBatch delivers: the edits of one task merged, and our awareness state. */
  private readonly sendLocal = (updates: Uint8Array[], awareness: boolean): void => {
    const own = awareness ? awarenessData(this.awareness, [this.doc.clientID]) : undefined;
    if (updates.length > 0 && this.mayWrite()) {
      const update = updates.length === 1 ? (updates[0] as Uint8Array) : mergeUpdates(updates);
      this.send(own === undefined ? { action: 'update', data: updateData(update) } : { action: 'update', data: updateData(update), awareness: own });
    } else if (own !== undefined) {
      this.send({ action: 'awareness', data: own });
    }
  };

  private send(frame: ClientFrame): void {
    const ws = this.ws;
    if (ws === null || ws.readyState !== OPEN) return;
    for (const text of frameMessage(encodeFrame(frame), () => `c${++this.chunkCounter}`)) ws.send(text);
  }

  private onMessage(data: unknown): void {
    this.lastMessageAt = Date.now();
    if (typeof data !== 'string') {
      this.emit('protocol-error', [new Error('binary frame from the server'), this]);
      return;
    }
    try {
      this.handleText(data, true);
    } catch (error) {
      this.emit('protocol-error', [error instanceof Error ? error : new Error(String(error)), this]);
    }
  }

  private handleText(text: string, mayBeChunk: boolean): void {
    const message = parseServerMessage(text);
    if (message === undefined) return;
    if (message.type === 'chunk') {
      if (!mayBeChunk) throw new Error('a chunk inside a chunked message');
      const whole = this.reassembler.add(message);
      if (whole !== undefined) this.handleText(whole, false);
      return;
    }
    this.handleMessage(message);
  }

  private handleMessage(message: Exclude<ServerMessage, { type: 'chunk' }>): void {
    switch (message.type) {
      case 'synced': {
        // The parts of a combined answer, in the order they would come one by one.
        const { data, stateVector, awareness, ages, ...connected } = message;
        this.handleMessage({ ...connected, type: 'connected' });
        this.handleMessage({ type: 'sync', data });
        if (stateVector !== undefined) this.handleMessage({ type: 'sync', data: stateVector });
        if (awareness !== undefined) applyAwarenessData(awareness, this.awareness, this, ages);
        return;
      }
      case 'sync':
      case 'update': {
        if (message.type === 'update' && message.awareness !== undefined) {
          this.applyUpdateWithAwareness(message.data, message.awareness, message.ages);
          return;
        }
        const applied = applySyncData(message.data, this.doc, this);
        if (applied.reply !== undefined && this.mayWrite()) this.send({ action: 'update', data: applied.reply });
        if (applied.type === SYNC_STEP2) {
          // The server's whole delete set, as stored: our deletions in it are durable.
          if (this.savedState.awaitsDeletions) this.savedState.confirmDeleteSet(decodeUpdate(applied.payload).ds);
          this.savedChanged();
          this.synced = true;
        } else if (applied.type === SYNC_STEP1) {
          // The server's durable state vector (only ever the answer to our `sync`).
          this.savedState.confirmStateVector(decodeStateVector(applied.payload));
          this.savedChanged();
          this.retrySavedCheck();
        }
        return;
      }
      case 'awareness':
        applyAwarenessData(message.data, this.awareness, this, message.ages);
        return;
      case 'connected': {
        this.admitted = true;
        this.unsuccessfulReconnects = 0;
        const roleChanged = this.role !== message.role;
        this.role = message.role;
        // A viewer's edits are never sent, so any it holds (made before a demotion, or
        // offline) stay unsaved: `saved` never claims what the server does not have.
        if (roleChanged) this.emit('role', [message.role, this]);
        this.connectionId = message.connectionId;
        this.user = message.user;
        this.roster.replace(message.participants);
        this.emitParticipants();
        return;
      }
      case 'participant-joined':
        this.roster.join(message.participant);
        this.emitParticipants();
        return;
      case 'participant-left':
        for (const gone of message.participants) this.roster.leave(gone);
        this.emitParticipants();
        return;
      case 'pong':
        return;
      case 'version': {
        const { type: _type, ...event } = message;
        this.emit('version', [event, this]);
        return;
      }
      case 'error':
        this.onServerError(message);
        return;
    }
  }

  /** A peer's edit and its cursor move, in one frame: the edit first, so the cursor's position resolves. */
  private applyUpdateWithAwareness(data: string, awareness: string, ages: Record<string, number> | undefined): void {
    this.handleMessage({ type: 'update', data });
    applyAwarenessData(awareness, this.awareness, this, ages);
  }

  private onServerError({ type: _type, ...error }: ServerErrorMessage): void {
    const { code, message } = error;
    this.emit('server-error', [error, this]);
    const ws = this.ws;
    if (ws === null) return;
    if (code === 'forbidden' && !this.admitted) {
      // The answer to our first message: the token is valid but has no access to the
      // scene. Retrying cannot help, so stop and say why.
      this.stop({ error: { code, message }, status: 'error' });
      this.socketGone(ws, null);
      closeQuietly(ws);
    } else if (code === 'token_expired') {
      // The server closes the connection next; reconnecting now fetches a fresh token.
      this.onClose(ws, { code: 4001, reason: message });
      closeQuietly(ws);
    }
  }

  /**
   * Whether local changes go to the server: only once it has told us our role (so a
   * viewer's edits are never sent, and no refusal of an edit can be taken for a refusal of
   * access); edits made before that reach it as the answer to its SyncStep1.
   */
  private mayWrite(): boolean {
    return this.admitted && this.role !== 'viewer';
  }

  private readonly onDocUpdate = (update: Uint8Array, origin: unknown, _doc: Y.Doc, transaction: Y.Transaction): void => {
    if (origin === this) return;
    // A viewer's local edits are recorded too: they are not stored, so not saved.
    if (this.savedState.record(transaction)) {
      this.savedChanged();
      this.scheduleSavedCheck();
    }
    if (this.mayWrite()) this.outgoing.update(update);
  };

  /**
   * Ask the server for its state a while after the last local edit (a `sync`: its answer
   * says what it has stored), not once per keystroke: `savedCheckDelay` after the last
   * edit, and no later than `savedCheckMaxWait` after the first unchecked one.
   */
  private scheduleSavedCheck(): void {
    this.savedCheckRetries = 0;
    if (!this.mayWrite()) return; // the sync on (re)connect asks, and its answer retries
    const now = Date.now();
    if (this.savedCheckTimer === null) this.savedCheckDueBy = now + this.savedCheckMaxWait;
    this.armSavedCheck(Math.max(0, Math.min(this.savedCheckDelay, this.savedCheckDueBy - now)));
  }

  /**
   * The server's answer left edits unconfirmed (it loaded its state before an update we
   * sent was stored, or our answer to its SyncStep1 is on its way): ask again, each time
   * twice as late, until the periodic resync would ask anyway.
   */
  private retrySavedCheck(): void {
    if (this.savedState.saved || this.savedCheckTimer !== null || !this.mayWrite()) return;
    const delay = this.savedCheckDelay * 2 ** this.savedCheckRetries;
    if (this.resyncInterval > 0 && delay >= this.resyncInterval) return;
    this.savedCheckRetries += 1;
    this.armSavedCheck(delay);
  }

  private armSavedCheck(delay: number): void {
    this.clearSavedCheck();
    this.savedCheckTimer = setTimeout(() => {
      this.savedCheckTimer = null;
      if (!this.savedState.saved) this.sendSync();
    }, delay);
  }

  private clearSavedCheck(): void {
    if (this.savedCheckTimer !== null) clearTimeout(this.savedCheckTimer);
    this.savedCheckTimer = null;
  }

  private savedChanged(): void {
    const saved = this.savedState.saved;
    if (saved === this.lastSaved) return;
    this.lastSaved = saved;
    if (saved) this.savedCheckRetries = 0;
    this.emit('saved', [saved, this]);
  }

  private readonly onAwarenessUpdate = ({ added, updated, removed }: AwarenessChange, origin: unknown): void => {
    if (origin === this) return;
    // Only our own client id: the server refuses states for ids a connection did not
    // introduce. y-protocols re-announces the local state every 15 s (half its 30 s
    // timeout), which reaches us here and keeps our cursor alive for the others.
    const own = this.doc.clientID;
    // A removal of our own state (the page is going away) must leave before the socket does.
    if ([...added, ...updated, ...removed].includes(own)) this.outgoing.awareness(removed.includes(own));
  };

  /** The page is going away (or into the back-forward cache): take our cursor with it. */
  private readonly onPageHide = (): void => {
    this.stateBeforeHide = this.awareness.getLocalState();
    awarenessProtocol.removeAwarenessStates(this.awareness, [this.doc.clientID], 'window unload');
  };

  /** Back from the back-forward cache: the same user is here again. */
  private readonly onPageShow = (event: Event): void => {
    if ((event as PageTransitionEvent).persisted && this.stateBeforeHide !== null) {
      this.awareness.setLocalState(this.stateBeforeHide);
    }
    this.stateBeforeHide = null;
  };

  private setStatus(status: ConnectionStatus): void {
    if (this.status === status) return;
    this.status = status;
    this.emit('status', [{ status }]);
  }

  private emitParticipants(): void {
    this.emit('participants', [this.roster.participants, this]);
  }
}

function tokenSource(options: ApiGatewayProviderOptions): () => Promise<string> {
  const { getToken, token } = options;
  if (getToken !== undefined) return async () => getToken();
  if (token !== undefined) return async () => token;
  throw new Error('ApiGatewayProvider needs a token or a getToken option');
}

function defaultSilenceTimeout(resyncInterval: number, pingInterval: number): number {
  const intervals = [resyncInterval, pingInterval].filter((ms) => ms > 0);
  // Each resync and ping gets an answer; missing two in a row means the socket is dead.
  return intervals.length === 0 ? 0 : 2 * Math.min(...intervals) + 10_000;
}

/** Close a socket whose events no longer matter (its handlers are already detached). */
function closeQuietly(ws: WebSocketLike): void {
  ws.onopen = null;
  ws.onmessage = null;
  ws.onclose = null;
  // Keep a listener: Node's ws emits 'error' when a connecting socket is closed, and an
  // EventEmitter without an error listener throws.
  ws.onerror = () => {};
  try {
    ws.close(1000);
  } catch {
    // Already closing; nothing to do.
  }
}

function errorMessage(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

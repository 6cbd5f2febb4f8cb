export { ApiGatewayProvider } from './provider.js';
export type {
  ApiGatewayProviderOptions,
  ConnectionError,
  ConnectionStatus,
  ProviderEvents,
  ServerError,
  VersionEvent,
} from './provider.js';
export { backoffDelay, type BackoffOptions } from './backoff.js';
export { SCENE_ID_PATTERN, sceneIdProblem } from './sceneId.js';
export type { ReachabilityProbe } from './refusals.js';
export { CLIENT_FRAME_LIMIT, ChunkError, ChunkReassembler, frameMessage, splitIntoChunks } from './chunking.js';
export { connectTarget, type ConnectTarget, type TokenTransport } from './connectTarget.js';
export {
  encodeFrame,
  FrameError,
  parseServerMessage,
  SUBPROTOCOL,
  type ClientFrame,
  type ConnectedMessage,
  type ErrorCode,
  type Participant,
  type Role,
  type ServerMessage,
  type VersionInfo,
  type VersionMessage,
} from './framing.js';
export type { CloseEventLike, MessageEventLike, WebSocketConstructor, WebSocketLike } from './websocket.js';

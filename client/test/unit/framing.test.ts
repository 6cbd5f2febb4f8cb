import { describe, expect, it } from 'vitest';

import { connectTarget } from '../../src/connectTarget.js';
import { encodeFrame, FrameError, parseServerMessage } from '../../src/framing.js';

const alice = { connectionId: 'c-1', userId: 'u-alice', userName: 'Alice' };

describe('parseServerMessage', () => {
  it('reads every server message of protocol version 1', () => {
    expect(parseServerMessage('{"type":"sync","data":"AAEA"}')).toEqual({ type: 'sync', data: 'AAEA' });
    expect(parseServerMessage('{"type":"update","data":"AAIA"}')).toEqual({ type: 'update', data: 'AAIA' });
    expect(parseServerMessage('{"type":"awareness","data":"AQA="}')).toEqual({ type: 'awareness', data: 'AQA=' });
    expect(parseServerMessage('{"type":"pong"}')).toEqual({ type: 'pong' });
    const connected = {
      type: 'connected',
      sceneId: 's-1',
      connectionId: 'c-1',
      user: { userId: 'u-alice', userName: 'Alice' },
      role: 'editor',
      participants: [alice],
    };
    expect(parseServerMessage(JSON.stringify(connected))).toEqual(connected);
    const joined = { type: 'participant-joined', participant: alice };
    expect(parseServerMessage(JSON.stringify(joined))).toEqual(joined);
    // One leave (an older server sends `participant` only), or every leave of an eviction.
    expect(parseServerMessage(JSON.stringify({ type: 'participant-left', participant: alice }))).toEqual({
      type: 'participant-left',
      participant: alice,
      participants: [alice],
    });
    const bob = { connectionId: 'c-2', userId: 'u-bob', userName: 'Bob' };
    const many = { type: 'participant-left', participant: alice, participants: [alice, bob] };
    expect(parseServerMessage(JSON.stringify(many))).toEqual(many);
    const error = { type: 'error', code: 'too_large', message: 'over 16 MiB', action: 'chunk', id: 'c7' };
    expect(parseServerMessage(JSON.stringify(error))).toEqual(error);
    const chunk = { type: 'chunk', id: 's1', seq: 2, total: 5, data: '"da' };
    expect(parseServerMessage(JSON.stringify(chunk))).toEqual(chunk);
  });

  it('drops fields it does not know', () => {
    expect(parseServerMessage('{"type":"pong","extra":1}')).toEqual({ type: 'pong' });
  });

  it('skips a message type from a newer server', () => {
    expect(parseServerMessage('{"type":"scene-renamed","name":"x"}')).toBeUndefined();
  });

  it.each([
    ['not JSON', 'hello'],
    ['not an object', '[1,2]'],
    ['no type', '{"data":"AA=="}'],
    ['data not a string', '{"type":"sync","data":5}'],
    ['chunk seq not an integer', '{"type":"chunk","id":"a","seq":1.5,"total":2,"data":""}'],
    ['participant missing a field', '{"type":"participant-joined","participant":{"connectionId":"c"}}'],
    ['connected without participants', '{"type":"connected","sceneId":"s","connectionId":"c","user":{"userId":"u","userName":"n"},"role":"editor"}'],
  ])('refuses a frame that is %s', (_why, text) => {
    expect(() => parseServerMessage(text)).toThrow(FrameError);
  });
});

describe('encodeFrame', () => {
  it('writes the action first and nothing but JSON', () => {
    expect(encodeFrame({ action: 'ping' })).toBe('{"action":"ping"}');
    expect(encodeFrame({ action: 'sync', data: 'AAAA' })).toBe('{"action":"sync","data":"AAAA"}');
  });
});

describe('connectTarget', () => {
  it('puts sceneId, token and extra params in the query', () => {
    const target = connectTarget('wss://h/prod', 'scene 1', 'a.b.c', { client: 'web' }, 'query');
    expect(target).toEqual({ url: 'wss://h/prod?sceneId=scene+1&token=a.b.c&client=web' });
  });

  it('appends to a URL that already has a query', () => {
    expect(connectTarget('ws://h/?x=1', 's', 't', {}, 'query').url).toBe('ws://h/?x=1&sceneId=s&token=t');
  });

  it('offers the token as the second subprotocol instead', () => {
    expect(connectTarget('wss://h/prod', 's', 'a.b.c', {}, 'subprotocol')).toEqual({
      url: 'wss://h/prod?sceneId=s',
      protocols: ['collab.v1', 'a.b.c'],
    });
  });
});

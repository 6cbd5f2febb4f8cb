import { describe, expect, it } from 'vitest';

import { ParticipantRoster } from '../../src/participants.js';

const person = (id: string) => ({ connectionId: id, userId: `u-${id}`, userName: id.toUpperCase() });
const ids = (roster: ParticipantRoster) => roster.participants.map((p) => p.connectionId);

describe('ParticipantRoster', () => {
  it('takes a list, then joins and departures', () => {
    const roster = new ParticipantRoster();
    roster.replace([person('me'), person('rick')]);
    roster.join(person('ilsa'));
    roster.join(person('ilsa'));
    roster.leave(person('rick'));
    expect(ids(roster)).toEqual(['me', 'ilsa']);
  });

  it('keeps a join that overtook an older list', () => {
    const roster = new ParticipantRoster();
    roster.join(person('ilsa'));
    roster.replace([person('me')]);
    expect(ids(roster)).toEqual(['me', 'ilsa']);
  });

  it('does not bring back someone whose departure overtook an older list', () => {
    const roster = new ParticipantRoster();
    roster.replace([person('me'), person('rick')]);
    roster.leave(person('rick'));
    roster.replace([person('me'), person('rick')]);
    roster.join(person('rick'));
    expect(ids(roster)).toEqual(['me']);
  });

  it('lets a later list drop someone who vanished without a departure message', () => {
    const roster = new ParticipantRoster();
    roster.join(person('ghost'));
    roster.replace([person('me'), person('ghost')]);
    roster.replace([person('me')]);
    expect(ids(roster)).toEqual(['me']);
  });

  it('forgets everything when the socket closes', () => {
    const roster = new ParticipantRoster();
    roster.replace([person('me'), person('rick')]);
    roster.leave(person('rick'));
    roster.clear();
    roster.replace([person('me'), person('rick')]);
    expect(ids(roster)).toEqual(['me', 'rick']);
  });
});

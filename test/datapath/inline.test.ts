/**
 * The in-process loop (`workers: 0`) on its own: what it polls, what it closes, and that a start
 * it cannot finish leaves nothing open.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TranslatorConfig } from '../../src/core/xlat/config.js';
import { Translator } from '../../src/core/xlat/translator.js';
import { closeInline, openInline } from '../../src/datapath/inline.js';
import { DatapathError } from '../../src/datapath/options.js';
import type { PacketIo } from '../../src/sys/io.js';
import { FakePacketIo } from '../fakes/packet-io.js';

const CONFIG: TranslatorConfig = {
  pool6: '64:ff9b::/96',
  eam: [{ v4: '192.0.0.4/32', v6: '2001:db8:1::4/128' }],
  ownV4: '192.0.0.4',
  ownV6: '2001:db8:1::4',
  hairpin: false,
  wkpGlobalOnly: false,
};

function io() {
  return {
    tun: new FakePacketIo({ name: 'tun' }),
    packet: new FakePacketIo({ name: 'packet' }),
    raw: new FakePacketIo({ name: 'raw' }),
  };
}

describe('in-process loop', () => {
  test('over ready objects: the loop takes them as given, starts as told, and closes all three', () => {
    const given = io();
    const { inline, buffer } = openInline({ translator: CONFIG, io: given, paused: true }, new Translator(CONFIG));
    assert.ok(buffer instanceof SharedArrayBuffer);
    assert.equal(inline.io, given);
    assert.equal(inline.dev, undefined);
    assert.equal(inline.loop.paused, true);
    assert.deepEqual(inline.polls, {}, 'no fd to poll: the readable handlers serve instead');
    closeInline(inline);
    assert.deepEqual([given.tun.closed, given.packet.closed, given.raw.closed], [true, true, true]);
  });

  test('neither devices nor io: a DatapathError', () => {
    assert.throws(() => openInline({ translator: CONFIG }, new Translator(CONFIG)), DatapathError);
  });

  test('an object with no fd and no readable handler: a DatapathError, and everything closed', () => {
    const given = io();
    let closed = 0;
    // A PacketIo that can be neither polled nor told to call back.
    const blind = { fd: -1, close: () => void closed++ } as unknown as PacketIo;
    const withBlind = { ...given, packet: blind };
    assert.throws(
      () => openInline({ translator: CONFIG, io: withBlind }, new Translator(CONFIG)),
      /the packet PacketIo has no fd to poll and no setReadableHandler/,
    );
    assert.equal(given.tun.closed, true);
    assert.equal(given.raw.closed, true);
    assert.equal(closed, 1);
  });
});

/**
 * The record of leased addresses clatd took off the uplink (src/daemon/system/taken-addresses.ts),
 * over a small in-memory rtnetlink: written before the removal, read back by a new instance (the
 * next start after a crash), lifetimes kept as deadlines, and what happens when putting back fails.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { TakenAddresses } from '../../src/daemon/system/taken-addresses.js';
import { IFA_F_NOPREFIXROUTE, IFA_F_PERMANENT, NetlinkError, type Rtnl } from '../../src/sys/rtnetlink/index.js';

interface Addr {
  address: string;
  prefixLen: number;
  flags: number;
  preferredLft?: number;
  validLft?: number;
}

/** Just what TakenAddresses uses of Rtnl, on one uplink. */
function fakeRtnl(file: () => string) {
  const addrs: Addr[] = [];
  const log: string[] = [];
  let addError: number | undefined;
  const rtnl = {
    addresses: () => addrs.map((a) => ({ ...a, family: 6, ifindex: 2 })),
    deleteAddress: (_dev: string, address: string) => {
      // The record must be on disk before the address goes.
      log.push(`del ${address} recorded=${existsSync(file())}`);
      addrs.splice(
        addrs.findIndex((a) => a.address === address),
        1,
      );
    },
    addAddress: (_dev: string, address: string, prefixLen: number, o: Omit<Addr, 'address' | 'prefixLen'>) => {
      if (addError !== undefined) throw new NetlinkError('RTM_NEWADDR', addError, 'test');
      log.push(`add ${address}/${prefixLen} flags=${o.flags} preferred=${o.preferredLft} valid=${o.validLft}`);
      addrs.push({ address, prefixLen, ...o });
    },
  };
  return {
    rtnl: rtnl as unknown as Rtnl,
    addrs,
    log,
    failAdd: (errno: number | undefined) => {
      addError = errno;
    },
  };
}

describe('taken addresses', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clatd-taken-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let now = 1_000_000;
  const clock = () => now;

  test('recorded before removal; put back with its flags and what is left of its lifetimes; record gone', () => {
    const t = new TakenAddresses(dir, 'eth0', clock);
    const f = fakeRtnl(() => t.file);
    f.addrs.push({
      address: '2001:db8:1::a5',
      prefixLen: 128,
      flags: IFA_F_NOPREFIXROUTE | IFA_F_PERMANENT,
      preferredLft: 1800,
      validLft: 3600,
    });
    assert.equal(t.take(f.rtnl, '2001:db8:1::77'), undefined, 'not configured: nothing taken');
    const e = t.take(f.rtnl, '2001:db8:1::a5');
    assert.equal(e?.prefixLen, 128);
    assert.deepEqual(f.log, ['del 2001:db8:1::a5 recorded=true']);
    assert.equal(f.addrs.length, 0);
    now += 600_000; // ten minutes held
    assert.deepEqual(t.giveBack(f.rtnl), ['2001:db8:1::a5/128 on eth0 put back (clatd had taken it off to serve it)']);
    // PERMANENT is the kernel's own state, not given back; NOPREFIXROUTE is.
    assert.equal(f.log[1], `add 2001:db8:1::a5/128 flags=${IFA_F_NOPREFIXROUTE} preferred=1200 valid=3000`);
    assert.equal(existsSync(t.file), false);
  });

  test('after a crash a new instance reads the record and puts it back; forever stays forever', () => {
    const t = new TakenAddresses(dir, 'eth1', clock);
    const f = fakeRtnl(() => t.file);
    f.addrs.push({ address: '2001:db8:2::5', prefixLen: 64, flags: 0 });
    t.take(f.rtnl, '2001:db8:2::5');
    assert.match(readFileSync(t.file, 'utf8'), /2001:db8:2::5/);
    const next = new TakenAddresses(dir, 'eth1', clock);
    assert.deepEqual(next.giveBack(f.rtnl), ['2001:db8:2::5/64 on eth1 put back (clatd had taken it off to serve it)']);
    assert.match(f.log[1], /preferred=4294967295 valid=4294967295$/);
  });

  test('a lease that ran out is not put back; one put back by another program is forgotten; other failures stay recorded', () => {
    const t = new TakenAddresses(dir, 'eth2', clock);
    const f = fakeRtnl(() => t.file);
    f.addrs.push(
      { address: '2001:db8:3::1', prefixLen: 128, flags: 0, preferredLft: 10, validLft: 20 },
      { address: '2001:db8:3::2', prefixLen: 128, flags: 0 },
      { address: '2001:db8:3::3', prefixLen: 128, flags: 0 },
    );
    for (const a of ['2001:db8:3::1', '2001:db8:3::2', '2001:db8:3::3']) t.take(f.rtnl, a);
    now += 30_000;
    assert.deepEqual(t.giveBack(f.rtnl, '2001:db8:3::1'), [
      '2001:db8:3::1/128 on eth2 not put back: its lease ended while clatd held it',
    ]);
    f.failAdd(17); // EEXIST
    assert.deepEqual(t.giveBack(f.rtnl, '2001:db8:3::2'), [
      '2001:db8:3::2/128 on eth2 is there again (put back by another program)',
    ]);
    f.failAdd(1); // EPERM: kept for later
    assert.deepEqual(t.giveBack(f.rtnl), []);
    assert.match(readFileSync(t.file, 'utf8'), /2001:db8:3::3/);
    assert.doesNotMatch(readFileSync(t.file, 'utf8'), /2001:db8:3::[12]/);
    f.failAdd(undefined);
    assert.equal(new TakenAddresses(dir, 'eth2', clock).giveBack(f.rtnl).length, 1);
    assert.equal(existsSync(t.file), false);
  });

  test('a damaged record is ignored', () => {
    const t = new TakenAddresses(dir, 'eth3', clock);
    const f = fakeRtnl(() => t.file);
    f.addrs.push({ address: '2001:db8:4::1', prefixLen: 128, flags: 0 });
    t.take(f.rtnl, '2001:db8:4::1');
    writeFileSync(t.file, '{"not": "a list"');
    assert.deepEqual(new TakenAddresses(dir, 'eth3', clock).giveBack(f.rtnl), []);
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatPrefix6 } from '../../src/core/addr/prefix.js';
import { DEFAULTS, loadConfig, RUN_OPTIONS, resolveConfig, tomlToRaw } from '../../src/daemon/config.js';
import { UsageError } from '../../src/options/args.js';

function usage(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UsageError, `not a UsageError: ${String(e)}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

describe('run configuration', () => {
  test('defaults', () => {
    const c = resolveConfig({});
    assert.equal(c.mode, 'auto');
    assert.equal(c.dad, 'strict');
    assert.equal(c.routeMetric, undefined, 'derived from the IPv6 default route order');
    assert.equal(c.logLevel, 'info');
    assert.equal(c.logFormat, 'text');
    assert.equal(c.interface, undefined);
    assert.equal(c.pref64, undefined);
    assert.equal(c.pref64Timeout, undefined);
    assert.deepEqual(c.dns64Servers, []);
    assert.equal(c.metrics, undefined);
    assert.deepEqual(c.translator, {
      trafficClass: DEFAULTS.trafficClass,
      udpZeroChecksum: DEFAULTS.udpZeroChecksum,
      icmpSrcV4: '192.0.0.8',
      lowestIpv6Mtu: 1280,
      wkpGlobalOnly: true,
    });
  });

  test('every flag parses', () => {
    const c = resolveConfig({
      interface: 'eth0',
      pref64: '2001:db8:64::/96',
      'pref64-timeout': '30',
      'dns64-server': ['2001:db8::53', '192.0.2.53'],
      mode: 'always',
      v4: '192.0.0.5',
      v6: '2001:db8:1::1234',
      dad: 'optimistic',
      'route-metric': '100',
      mtu: '1400',
      workers: '2',
      offload: 'off',
      'traffic-class': 'zero',
      'udp-zero-checksum': 'drop',
      'icmp-src-v4': '192.0.0.9',
      'lowest-ipv6-mtu': '1400',
      'wkp-global-only': 'off',
      'log-level': 'debug',
      'log-format': 'json',
      control: '/tmp/x.sock',
      metrics: '[::1]:9464',
      user: 'clatd',
    });
    assert.equal(c.interface, 'eth0');
    assert.equal(formatPrefix6(c.pref64!), '2001:db8:64::/96');
    assert.equal(c.pref64Timeout, 30);
    assert.deepEqual(c.dns64Servers, ['2001:db8::53', '192.0.2.53']);
    assert.equal(c.mode, 'always');
    assert.equal(c.dad, 'optimistic');
    assert.equal(c.routeMetric, 100);
    assert.equal(c.mtu, 1400);
    assert.equal(c.workers, 2);
    assert.equal(c.offload, 'off');
    assert.equal(c.translator.trafficClass, 'zero');
    assert.equal(c.translator.udpZeroChecksum, 'drop');
    assert.equal(c.translator.wkpGlobalOnly, false);
    assert.equal(c.translator.lowestIpv6Mtu, 1400);
    assert.deepEqual(c.metrics, { host: '::1', port: 9464 });
    assert.equal(c.user, 'clatd');
    assert.equal(resolveConfig({ user: '65534:65534' }).user, '65534:65534');
  });

  test('a bare --pref64 address is a /96; other RFC 6052 lengths are accepted', () => {
    assert.equal(formatPrefix6(resolveConfig({ pref64: '64:ff9b::' }).pref64!), '64:ff9b::/96');
    assert.equal(formatPrefix6(resolveConfig({ pref64: '2001:db8::/32' }).pref64!), '2001:db8::/32');
  });

  test('bad values: one line naming the flag', () => {
    usage(() => resolveConfig({ 'route-metric': 'x' }), /^clatd run: --route-metric must be an integer, got "x"$/);
    usage(() => resolveConfig({ mode: 'sometimes' }), /--mode must be one of auto, always/);
    usage(() => resolveConfig({ dad: 'maybe' }), /--dad must be one of strict, optimistic, off/);
    usage(() => resolveConfig({ offload: 'on' }), /--offload must be one of auto, off/);
    usage(() => resolveConfig({ pref64: '2001:db8::/33' }), /--pref64 is not a NAT64 prefix/);
    usage(() => resolveConfig({ pref64: 'nonsense' }), /--pref64/);
    usage(() => resolveConfig({ v4: '192.0.0.300' }), /--v4 must be an IPv4 address/);
    usage(() => resolveConfig({ v6: 'fe80::1' }), /--v6 must be a unicast address outside fe80::\/10/);
    usage(() => resolveConfig({ 'dns64-server': ['dns.example'] }), /--dns64-server must be an IP address/);
    usage(() => resolveConfig({ interface: 'a/b' }), /--interface is not a valid interface name/);
    usage(() => resolveConfig({ interface: 'averyveryverylongname' }), /--interface/);
    usage(() => resolveConfig({ 'pref64-timeout': '0' }), /--pref64-timeout must be between 1 and 86400/);
    usage(() => resolveConfig({ workers: '257' }), /--workers must be between 0 and 256/);
    usage(() => resolveConfig({ 'log-format': 'xml' }), /--log-format must be one of text, json/);
    usage(() => resolveConfig({ control: 'relative.sock' }), /--control must be an absolute path/);
    usage(() => resolveConfig({ metrics: 'localhost' }), /--metrics must be HOST:PORT/);
    usage(() => resolveConfig({ metrics: '127.0.0.1:70000' }), /--metrics port must be between 1 and 65535/);
    usage(() => resolveConfig({ user: 'a b' }), /--user must be a user name, a uid or uid:gid, got "a b"/);
    usage(() => resolveConfig({ user: '-x' }), /--user must be a user name/);
  });

  test('--metrics is refused on a non-loopback address unless allowed', () => {
    usage(() => resolveConfig({ metrics: '0.0.0.0:9464' }), /not loopback; add --metrics-allow-remote/);
    usage(() => resolveConfig({ metrics: '[2001:db8::1]:9464' }), /not loopback/);
    assert.deepEqual(resolveConfig({ metrics: 'localhost:9464' }).metrics, { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(resolveConfig({ metrics: '0.0.0.0:9464', 'metrics-allow-remote': true }).metrics, {
      host: '0.0.0.0',
      port: 9464,
    });
  });
});

describe('TOML file', () => {
  const FILE = [
    'interface = "eth1"',
    'pref64 = "64:ff9b::/96"',
    'dns64-server = ["2001:db8::53"]',
    'route-metric = 4000',
    'dad = "off"',
    'wkp-global-only = false',
    'metrics-allow-remote = true',
    'metrics = "0.0.0.0:9100"',
    '',
  ].join('\n');

  test('every key is a flag name; values of any natural TOML type', () => {
    const c = resolveConfig({}, tomlToRaw(FILE, '/etc/clatd.toml'), '/etc/clatd.toml');
    assert.equal(c.interface, 'eth1');
    assert.equal(formatPrefix6(c.pref64!), '64:ff9b::/96');
    assert.deepEqual(c.dns64Servers, ['2001:db8::53']);
    assert.equal(c.routeMetric, 4000);
    assert.equal(c.dad, 'off');
    assert.equal(c.translator.wkpGlobalOnly, false);
    assert.deepEqual(c.metrics, { host: '0.0.0.0', port: 9100 });
  });

  test('flags beat the file, the file beats defaults', () => {
    const c = resolveConfig({ 'route-metric': '10' }, tomlToRaw(FILE, 'f.toml'), 'f.toml');
    assert.equal(c.routeMetric, 10);
    assert.equal(c.dad, 'off');
    assert.equal(c.mode, 'auto');
  });

  test('every run flag except --config is a valid key', () => {
    for (const [name, o] of Object.entries(RUN_OPTIONS)) {
      if (name === 'config') continue;
      const v = o.type === 'boolean' ? 'true' : o.multiple ? '["x"]' : '"x"';
      assert.doesNotThrow(() => tomlToRaw(`${name} = ${v}\n`, 'f.toml'), name);
    }
  });

  test('errors name the file and key', () => {
    usage(() => tomlToRaw('colour = "blue"\n', 'f.toml'), /^clatd run: f\.toml: unknown key "colour"$/);
    usage(() => resolveConfig({}, tomlToRaw('dad = 3\n', 'f.toml'), 'f.toml'), /f\.toml: key "dad" must be one of/);
    usage(() => tomlToRaw('dad = [1]\n', 'f.toml'), /f\.toml: key "dad" must be a string/);
    usage(
      () => tomlToRaw('metrics-allow-remote = "yes"\n', 'f.toml'),
      /key "metrics-allow-remote" must be true or false/,
    );
    usage(() => tomlToRaw('interface = \n', 'f.toml'), /^clatd run: f\.toml:1:13: invalid TOML: invalid value$/);
    usage(
      () => resolveConfig({}, tomlToRaw('route-metric = "high"\n', 'f.toml'), 'f.toml'),
      /^clatd run: f\.toml: key "route-metric" must be an integer/,
    );
  });

  test('a TOML syntax error gives file, line and column, and a hint to quote a bare value', () => {
    usage(
      () => tomlToRaw('dad = "off"\npref64 = 64:ff9b::/96\n', '/etc/clatd/clatd.toml'),
      /^clatd run: \/etc\/clatd\/clatd\.toml:2:10: invalid TOML: invalid date; a text value is written in quotes: pref64 = "64:ff9b::\/96"$/,
    );
    usage(
      () => tomlToRaw('interface = eth0 # the uplink\n', 'f.toml'),
      /^clatd run: f\.toml:1:\d+: invalid TOML: .*; a text value is written in quotes: interface = "eth0"$/,
    );
    // No hint where quoting is not the answer.
    usage(() => tomlToRaw('dad = "off\n', 'f.toml'), /^clatd run: f\.toml:1:\d+: invalid TOML: [^;]*$/);
  });

  test('a number that is not whole says so', () => {
    usage(
      () => tomlToRaw('workers = 1.5\n', 'f.toml'),
      /^clatd run: f\.toml: key "workers" must be a whole number, got 1\.5$/,
    );
    usage(
      () => tomlToRaw('mtu = true\n', 'f.toml'),
      /^clatd run: f\.toml: key "mtu" must be a whole number, got true$/,
    );
    assert.equal(tomlToRaw('workers = 2\n', 'f.toml').workers, '2');
  });

  test('errors name the command whose flags they are', () => {
    usage(() => resolveConfig({ pref64: '2001:db8::/33' }, {}, undefined, 'discover'), /^clatd discover: --pref64 /);
    usage(() => resolveConfig({ pref64: '2001:db8::/33' }), /^clatd run: --pref64 /);
  });

  test('loadConfig reads --config and reports an unreadable file', () => {
    const c = loadConfig({ config: '/x.toml', mode: 'always' }, () => 'mode = "auto"\ndad = "optimistic"\n');
    assert.equal(c.mode, 'always');
    assert.equal(c.dad, 'optimistic');
    assert.equal(c.configFile, '/x.toml');
    usage(
      () =>
        loadConfig({ config: '/nope.toml' }, () => {
          throw new Error('ENOENT: no such file');
        }),
      /--config: cannot read \/nope\.toml/,
    );
  });
});

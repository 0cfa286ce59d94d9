/** The installed units, written from systemd/clatd@.service by renderUnits (src/cli/units.ts). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readTemplate, renderUnits } from '../../src/cli/units.js';

describe('renderUnits', () => {
  const units = renderUnits({ command: '/opt/node/bin/node --x /opt/clatd/main.js', config: '/etc/c.toml' });

  test('every command is the absolute one given; no /usr/bin/env left', () => {
    for (const text of Object.values(units)) {
      assert.doesNotMatch(text, /\/usr\/bin\/env/);
      const execs = text.split('\n').filter((l) => /^Exec(Start|StopPost)=/.test(l));
      assert.equal(execs.length, 2);
      for (const l of execs) assert.match(l, /^Exec\w+=-?\/opt\/node\/bin\/node --x \/opt\/clatd\/main\.js /);
    }
  });

  test('clatd@.service names its instance; clatd.service finds the uplink itself', () => {
    assert.match(units['clatd@.service'], /^ExecStart=.* run --config \/etc\/c\.toml --interface %I --control /m);
    assert.match(units['clatd.service'], /^ExecStart=.* run --config \/etc\/c\.toml$/m);
    assert.match(units['clatd.service'], /^ExecStopPost=-.* cleanup --config \/etc\/c\.toml$/m);
    assert.match(units['clatd.service'], /^Description=464XLAT CLAT \(clatd\)$/m);
    assert.doesNotMatch(units['clatd.service'], /%[iI]/);
  });

  test('everything else is the template, line for line', () => {
    const body = (t: string) =>
      t
        .split('\n')
        .filter((l) => !l.startsWith('#') && !/^(Exec(Start|StopPost)|Description)=/.test(l))
        .join('\n');
    assert.equal(body(units['clatd@.service']), body(readTemplate()));
    assert.equal(body(units['clatd.service']), body(readTemplate()));
  });

  test('a clatd under /home or /root gets ProtectHome=read-only, else yes', () => {
    assert.match(units['clatd.service'], /^ProtectHome=yes$/m);
    const home = renderUnits({
      command: '/root/.nvm/node /root/clatd/main.js',
      config: '/etc/c.toml',
      homeReadable: true,
    });
    for (const text of Object.values(home)) assert.match(text, /^ProtectHome=read-only$/m);
  });

  test('a relative command is refused', () => {
    assert.throws(() => renderUnits({ command: 'clatd', config: '/etc/c.toml' }), /absolute/);
  });
});

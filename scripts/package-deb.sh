#!/usr/bin/env bash
# `npm run package`: builds the Debian package clatd-node with dpkg-deb, from this checkout (after
# `npm ci`), and prints the path of the .deb as its last line. No network.
#
#   /usr/bin/clatd                      -> main.js, run by /usr/bin/node (Debian's nodejs >= 20) by absolute path
#   /usr/lib/clatd/                     package.json, dist/src (JavaScript only), the runtime npm
#                                       dependencies, build/Release/clatd_native.node
#   /usr/lib/systemd/system/            clatd@.service, clatd.service (src/cli/units.ts)
#   /etc/clatd/clatd.toml               commented default config (conffile), passed with --config
#   /usr/share/man/man8/clatd.8.gz      generated from the option tables, as --help is
#
# The addon is built here with node-gyp against the headers of /usr/bin/node (/usr/include/node,
# from the nodejs package, or libnode-dev on Debian 13). Output: build/deb/, or $CLATD_DEB_OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
die() {
  echo "package-deb: $*" >&2
  exit 1
}
NODE=/usr/bin/node
[[ -x $NODE ]] || die "$NODE is missing: the package runs the system's node (apt-get install nodejs)"
major=$("$NODE" -p 'process.versions.node.split(".")[0]')
((major >= 20)) || die "$NODE is Node.js $major; clatd needs 20 or later"
[[ -f /usr/include/node/node_api.h ]] || die "no headers in /usr/include/node for the addon (apt-get install libnode-dev)"
for tool in dpkg-deb fakeroot gzip strip objdump; do
  command -v "$tool" >/dev/null || [[ $tool == fakeroot ]] || die "$tool is missing"
done

version=$("$NODE" -p 'require("./package.json").version')
arch=$(dpkg --print-architecture)
pkg=clatd-node
out=${CLATD_DEB_OUT:-build/deb}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
maintainer=${DEB_MAINTAINER:-$(git log -1 --format='%an <%ae>' 2>/dev/null || echo 'clatd maintainers <root@localhost>')}

work=$(mktemp -d -t clatd-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
lib=$root/usr/lib/clatd

echo "package-deb: compiling TypeScript" >&2
npx tsc -p . >&2

echo "package-deb: building the addon for $NODE ($("$NODE" --version))" >&2
mkdir -p "$work/addon"
cp -r binding.gyp native "$work/addon/"
# Debian's hardening flags, all of them (bindnow included), when dpkg-dev is there; gyp's Makefile
# appends CFLAGS and LDFLAGS to its own.
if command -v dpkg-buildflags >/dev/null; then
  export DEB_BUILD_MAINT_OPTIONS=${DEB_BUILD_MAINT_OPTIONS:-hardening=+all}
  export CFLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)" LDFLAGS="$(dpkg-buildflags --get LDFLAGS)"
fi
gyp=${npm_config_node_gyp:-/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js}
if [[ $gyp == *.js ]]; then
  (cd "$work/addon" && "$NODE" "$gyp" rebuild --nodedir=/usr >&2)
else
  (cd "$work/addon" && "${gyp:-node-gyp}" rebuild --nodedir=/usr >&2)
fi

echo "package-deb: staging" >&2
mkdir -p "$lib/build/Release" "$lib/node_modules" "$root/usr/bin" "$root/usr/lib/systemd/system" \
  "$root/etc/clatd" "$root/usr/share/man/man8" "$root/usr/share/doc/$pkg" "$root/DEBIAN"
install -m 0644 "$work/addon/build/Release/clatd_native.node" "$lib/build/Release/"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$lib/build/Release/clatd_native.node"
(cd dist && find src -name '*.js' -print0 | cpio --null -pdm --quiet "$lib/dist" 2>/dev/null) ||
  (cd dist && find src -name '*.js' -exec install -D -m 0644 {} "$lib/dist/{}" \;)
chmod 0644 $(find "$lib/dist" -type f)
# package.json: what node needs (the module type) and what --version reads; no scripts.
"$NODE" -e '
  const p = require("./package.json");
  const keep = { name: p.name, version: p.version, description: p.description, license: p.license,
    type: p.type, main: p.main, dependencies: p.dependencies };
  process.stdout.write(JSON.stringify(keep, null, 2) + "\n");' >"$lib/package.json"
# The runtime dependencies, as npm installed them (no devDependencies).
while IFS= read -r dep; do
  [[ $dep == "$PWD" ]] && continue
  rel=${dep#"$PWD"/}
  mkdir -p "$lib/$(dirname "$rel")"
  cp -r "$dep" "$lib/$rel"
done < <(npm ls --omit=dev --parseable --all 2>/dev/null)
find "$lib/node_modules" \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.cts' -o -name '*.d.mts' \) -delete
find "$lib/node_modules" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +

# /usr/bin/clatd is a link to main.js, whose shebang names /usr/bin/node by absolute path with the
# daemon's flags, if any (one flag at most: a shebang line passes one argument).
flags=$("$NODE" --input-type=module -e 'import("./dist/src/options/node-flags.js").then((m) => process.stdout.write(m.DAEMON_NODE_FLAGS.join(" ")))')
[[ $flags != *" "* ]] || die "more than one daemon flag ($flags) does not fit a shebang line"
main=$lib/dist/src/cli/main.js
sed -i "1s|^#!.*|#!$NODE${flags:+ $flags}|" "$main"
chmod 0755 "$main"
ln -s ../lib/clatd/dist/src/cli/main.js "$root/usr/bin/clatd"

"$NODE" scripts/gen-docs.mjs "$work/docs"
install -m 0644 "$work/docs/clatd.toml" "$root/etc/clatd/clatd.toml"
gzip -9n <"$work/docs/clatd.8" >"$root/usr/share/man/man8/clatd.8.gz"
"$NODE" --input-type=module -e '
  const { renderUnits } = await import("./dist/src/cli/units.js");
  const { writeFileSync } = await import("node:fs");
  const units = renderUnits({ command: "/usr/bin/clatd", config: "/etc/clatd/clatd.toml" });
  for (const [name, text] of Object.entries(units)) writeFileSync(`${process.argv[1]}/${name}`, text);
' "$root/usr/lib/systemd/system"
chmod 0644 "$root"/usr/lib/systemd/system/*

# copyright: each bundled npm package's licence text goes in (and its own copy, with its README,
# out of /usr/lib); a bundled package the file does not cover stops the build.
cp packaging/debian/copyright "$work/copyright"
for dir in "$lib"/node_modules/*/ "$lib"/node_modules/@*/*/; do
  [[ -d $dir && -f $dir/package.json ]] || continue
  name=${dir#"$lib/node_modules/"}
  name=${name%/}
  grep -q "^Files: usr/lib/clatd/node_modules/$name/\*" "$work/copyright" ||
    die "packaging/debian/copyright does not cover the bundled npm package $name"
  lic=$(ls "$dir" | grep -i '^licen[cs]e' | head -1)
  [[ -n $lic ]] || die "$name has no licence file to copy into the copyright file"
  "$NODE" -e '
    const fs = require("node:fs");
    const [file, name, text] = [process.argv[1], process.argv[2], fs.readFileSync(process.argv[3], "utf8")];
    const body = text.trimEnd().split("\n").map((l) => (l.trim() === "" ? " ." : ` ${l}`)).join("\n");
    fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace(`@LICENSE:${name}@`, body));
  ' "$work/copyright" "$name" "$dir/$lic"
  rm -f "$dir"/[Rr][Ee][Aa][Dd][Mm][Ee]* "$dir/$lic"
done
grep -q '@LICENSE:' "$work/copyright" && die "packaging/debian/copyright names a licence no bundled package has"
install -m 0644 "$work/copyright" "$root/usr/share/doc/$pkg/copyright"
{
  echo "$pkg ($version) unstable; urgency=medium"
  echo
  echo "  * Built from clatd $version ($(git rev-parse --short HEAD 2>/dev/null || echo 'no git'))."
  echo
  echo " -- $maintainer  $(date -R -u -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$root/usr/share/doc/$pkg/changelog.gz"

glibc=$(objdump -T "$lib/build/Release/clatd_native.node" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CTL
Package: $pkg
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: nodejs (>= 20), libc6 (>= $glibc), nftables
Conflicts: clatd
Replaces: clatd
Section: net
Priority: optional
Description: 464XLAT CLAT daemon (Node.js): IPv4 for an IPv6-only host
 clatd gives an IPv6-only Linux host working IPv4 (464XLAT CLAT, RFC 6877):
 applications send IPv4 into a TUN device, clatd translates each packet
 statelessly (RFC 7915) to IPv6 toward the network's NAT64 prefix, found from
 Router Advertisements (RFC 8781) or DNS64 (RFC 7050), and back. It does real
 duplicate address detection and translates plain TCP, UDP and ping in the
 kernel with tc eBPF programs when it can.
 .
 This is not Debian's clatd package (a Perl CLAT) and replaces it: both are
 CLATs, and both would install /usr/share/man/man8/clatd.8.gz and a
 clatd.service. Nothing starts by itself: enable clatd.service or
 clatd@IF.service.
CTL
echo /etc/clatd/clatd.toml >"$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "packaging/debian/$s" "$root/DEBIAN/$s"; done
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control" "$root/DEBIAN/conffiles"
find "$root" -type d -exec chmod 0755 {} +
find "$root" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} + 2>/dev/null || true

mkdir -p "$out"
deb=$out/${pkg}_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
realpath "$deb"

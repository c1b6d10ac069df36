#!/usr/bin/env bash
# Builds Stratus' stand-in for public.ecr.aws/lambda/python:3.11 into the
# local Docker engine, under exactly that tag, so that the AWS tutorial's
# Dockerfile (`FROM public.ecr.aws/lambda/python:3.11`) builds unchanged
# without contacting a public image registry.
#
# What it is: a Debian 12 (bookworm) minbase rootfs made with debootstrap
# (python3.11 is Debian 12's Python), awslambdaric from PyPI in
# /var/runtime, /var/runtime/bootstrap{,.py} and /lambda-entrypoint.sh with
# the AWS image's logic, and the AWS image's ENV, WORKDIR and ENTRYPOINT
# (spec: /work/shared/specs/lambda-base-images-and-rie.md §1, §2, §5.1).
# Differences from the real image: no Runtime Interface Emulator (the
# entrypoint says so and exits 1 when AWS_LAMBDA_RUNTIME_API is empty),
# Debian's Python 3.11.2 in /usr/bin (linked from /var/lang/bin), LANG is
# C.UTF-8 (no en_US locale), and the OS is Debian rather than Amazon Linux.
#
# Cached: the build key is the sha256 of this script, the files it copies
# and the awslambdaric pin. If the engine already has the image with label
# stratus.build-key=<key>, nothing happens; else a saved tarball
# ${STRATUS_IMAGE_CACHE:-/var/cache/stratus/test-images}/python3.11-<key>.tar
# is loaded; else the image is built (needs root, debootstrap, the Debian
# mirror and PyPI) and saved there. A lock file makes concurrent runs wait
# for one another.
#
# Environment:
#   STRATUS_IMAGE_CACHE    where tarballs and the lock live
#   STRATUS_DEBIAN_MIRROR  Debian mirror for debootstrap (default: the one
#                          apt on this machine uses for bookworm)
#   http(s)_proxy, no_proxy, PIP_INDEX_URL, PIP_EXTRA_INDEX_URL,
#   PIP_TRUSTED_HOST, PIP_CERT  passed on to pip in the chroot
set -euo pipefail

IMAGE=public.ecr.aws/lambda/python:3.11
NAME=python3.11
SUITE=bookworm
PYTHON=python3.11
LOCK_TIMEOUT_S=1800

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../../.." && pwd)"
# The files copied into the image; all of them are part of the build key.
COPIED=(lambda-entrypoint.sh bootstrap bootstrap.py)
# awslambdaric: the version the Runtime API tests use.
REQUIREMENTS="$repo_root/crates/runtime-api/requirements-test.txt"
cache_dir="${STRATUS_IMAGE_CACHE:-/var/cache/stratus/test-images}"

started_ns=$(date +%s%N)
say() { echo "$NAME image: $*"; }
elapsed() { awk -v ns=$(($(date +%s%N) - started_ns)) 'BEGIN { printf "%.1fs", ns / 1e9 }'; }
die() {
    echo "$NAME image: error: $*" >&2
    exit 1
}

ric_pin="$(grep -E '^awslambdaric==' "$REQUIREMENTS" 2>/dev/null | head -n 1 | tr -d '[:space:]')" ||
    true
[ -n "$ric_pin" ] || die "no awslambdaric==VERSION line in $REQUIREMENTS"

key="$(
    cd "$here"
    {
        sha256sum build.sh "${COPIED[@]}"
        echo "$ric_pin"
    } | sha256sum | cut -d' ' -f1
)"
tarball="$cache_dir/$NAME-$key.tar"

# The build key on the image the engine holds under $IMAGE, if any.
image_key() {
    docker image inspect --format '{{ index .Config.Labels "stratus.build-key" }}' "$IMAGE" \
        2>/dev/null || true
}

# The Debian mirror apt uses for $SUITE (deb822 .sources or one-line .list).
debian_mirror() {
    if [ -n "${STRATUS_DEBIAN_MIRROR:-}" ]; then
        echo "$STRATUS_DEBIAN_MIRROR"
        return
    fi
    local f mirror
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        mirror="$(awk -v suite="$SUITE" '
            function flush() {
                if (uris != "" && types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") &&
                    (" " comps " ") ~ / main /) { split(uris, u, " "); print u[1]; found = 1; exit }
                uris = ""; suites = ""; types = ""; comps = ""
            }
            /^[ \t]*$/ { flush(); next }
            /^#/ { next }
            /^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
            /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
            /^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
            /^Components:/ { sub(/^Components:[ \t]*/, ""); comps = $0 }
            END { if (!found) flush() }
        ' "$f")"
        if [ -n "$mirror" ]; then
            echo "$mirror"
            return
        fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        mirror="$(awk -v suite="$SUITE" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                if ($(i + 1) == suite) { print $i; exit }
            }' "$f")"
        if [ -n "$mirror" ]; then
            echo "$mirror"
            return
        fi
    done
    die "no Debian mirror for $SUITE in /etc/apt/sources.list(.d); set STRATUS_DEBIAN_MIRROR"
}

work=""
cleanup() {
    [ -n "$work" ] || return 0
    if mountpoint -q "$work/rootfs/proc" 2>/dev/null; then
        umount "$work/rootfs/proc" || umount -l "$work/rootfs/proc" || true
    fi
    if grep -q " $work/" /proc/mounts; then
        echo "$NAME image: not removing $work: something is still mounted under it" >&2
        return 0
    fi
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# Runs a build step with its output in the build log; shows the log's tail
# if the step fails.
step() {
    if ! "$@" >>"$work/build.log" 2>&1; then
        echo "$NAME image: failed: $*" >&2
        tail -n 60 "$work/build.log" >&2
        exit 1
    fi
}

build() {
    [ "$(id -u)" -eq 0 ] || die "building needs root (debootstrap, chroot)"
    if ! command -v debootstrap >/dev/null 2>&1; then
        say "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap \
            >/dev/null || die "apt-get install debootstrap failed"
    fi
    local mirror root host_ca
    mirror="$(debian_mirror)"
    work="$(mktemp -d "${TMPDIR:-/var/tmp}/stratus-$NAME.XXXXXX")"
    root="$work/rootfs"
    say "building (debootstrap $SUITE from $mirror, $ric_pin from PyPI; log: $work/build.log)"

    step debootstrap --variant=minbase --components=main \
        --include=python3,python3-pip,ca-certificates "$SUITE" "$root" "$mirror"

    # pip in the chroot: this machine's name resolution and CA bundle (a
    # proxy may re-sign TLS), a clean environment otherwise.
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    cp /etc/hosts "$root/etc/hosts"
    host_ca="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
    if [ -f "$host_ca" ]; then
        cp "$host_ca" "$root/tmp/host-ca.crt"
    else
        cp "$root/etc/ssl/certs/ca-certificates.crt" "$root/tmp/host-ca.crt"
    fi
    # As in the AWS image, pip may install anywhere (no PEP 668 marker).
    rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
    mount -t proc proc "$root/proc"
    local env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
        LANG=C.UTF-8 PIP_CERT=/tmp/host-ca.crt PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
        PIP_DEFAULT_TIMEOUT=180)
    local var
    for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY \
        PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST; do
        if [ -n "${!var:-}" ]; then env+=("$var=${!var}"); fi
    done
    step chroot "$root" /usr/bin/env -i "${env[@]}" "/usr/bin/$PYTHON" -m pip install \
        --no-warn-script-location --only-binary :all: --target /var/runtime "$ric_pin"
    step chroot "$root" /usr/bin/env -i "${env[@]}" "/usr/bin/$PYTHON" -c \
        'import sys; sys.path.insert(0, "/var/runtime"); import awslambdaric.bootstrap'
    umount "$root/proc"

    # The Lambda layout.
    install -d -m 755 "$root/var/task" "$root/var/runtime" "$root/var/lang/bin" "$root/opt"
    install -m 755 "$here/lambda-entrypoint.sh" "$root/lambda-entrypoint.sh"
    install -m 755 "$here/bootstrap" "$root/var/runtime/bootstrap"
    install -m 644 "$here/bootstrap.py" "$root/var/runtime/bootstrap.py"
    local link
    for link in "$PYTHON" python3 python; do
        ln -sfn "/usr/bin/$PYTHON" "$root/var/lang/bin/$link"
    done
    for link in pip pip3; do
        ln -sfn /usr/bin/pip3 "$root/var/lang/bin/$link"
    done

    # Trim: caches, lists, logs, docs (copyright files stay), man pages,
    # translations, the build's network config and device nodes.
    rm -rf "${root:?}"/var/cache/apt/* "${root:?}"/var/lib/apt/lists/* "${root:?}"/var/cache/debconf/*-old \
        "${root:?}"/var/lib/dpkg/*-old "${root:?}"/var/log/* "${root:?}"/root/.cache "${root:?}"/tmp/* \
        "${root:?}"/usr/share/man/* "${root:?}"/usr/share/info/* "${root:?}"/usr/share/locale/* \
        "${root:?}"/usr/share/lintian "${root:?}"/dev/* "${root:?}"/etc/hostname
    find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    : >"$root/etc/resolv.conf"
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
    chmod 1777 "$root/tmp"

    step_import() {
        tar --numeric-owner -C "$root" -cf - . | docker import \
            --message "Stratus stand-in for $IMAGE (tests/images/$NAME/build.sh)" \
            --change 'ENV LANG=C.UTF-8' \
            --change 'ENV TZ=:/etc/localtime' \
            --change 'ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin' \
            --change 'ENV LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib' \
            --change 'ENV LAMBDA_TASK_ROOT=/var/task' \
            --change 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' \
            --change 'WORKDIR /var/task' \
            --change 'ENTRYPOINT ["/lambda-entrypoint.sh"]' \
            --change "LABEL stratus.build-key=$key" \
            --change "LABEL stratus.stand-in-for=$IMAGE" \
            - "$IMAGE"
    }
    step step_import
}

save() {
    mkdir -p "$cache_dir"
    local tmp="$tarball.tmp.$$"
    if docker save -o "$tmp" "$IMAGE" && chmod 644 "$tmp" && mv -f "$tmp" "$tarball"; then
        # Tarballs of earlier keys are of no further use.
        find "$cache_dir" -maxdepth 1 -name "$NAME-*.tar" ! -name "$(basename "$tarball")" -delete
    else
        rm -f "$tmp"
        echo "$NAME image: warning: could not save $tarball; the next run builds again" >&2
    fi
}

mkdir -p "$cache_dir"
lock="$cache_dir/$NAME.lock"
exec 9>>"$lock"
if ! flock -n 9; then
    say "waiting for another run (lock $lock)"
    flock -w "$LOCK_TIMEOUT_S" 9 || die "still locked after ${LOCK_TIMEOUT_S}s: $lock"
fi

previous_id="$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
if [ "$(image_key)" = "$key" ]; then
    say "up to date (key ${key:0:12}), nothing to do ($(elapsed))"
    exit 0
fi

action=""
if [ -f "$tarball" ]; then
    if docker load -i "$tarball" >/dev/null && [ "$(image_key)" = "$key" ]; then
        action="loaded from $tarball"
    else
        echo "$NAME image: $tarball did not load as expected; removing it and building" >&2
        rm -f "$tarball"
    fi
fi
if [ -z "$action" ]; then
    build
    save
    action="built and saved to $tarball"
fi

# An earlier stand-in under the same tag is now dangling: remove it (best
# effort: a container may still use it).
new_id="$(docker image inspect --format '{{.Id}}' "$IMAGE")"
if [ -n "$previous_id" ] && [ "$previous_id" != "$new_id" ]; then
    docker rmi "$previous_id" >/dev/null 2>&1 || true
fi
size="$(docker image inspect --format '{{.Size}}' "$IMAGE")"
say "$action (key ${key:0:12}, $((size / 1000000)) MB) in $(elapsed)"

#!/usr/bin/env bash
# Build Vigil's image from the Dockerfile and run it, on a Debian machine with no Docker engine
# that cannot pull base images (our development machines and CI). Run as root:
#
#   bash scripts/build_image.sh
#
# 1. apt-get installs debootstrap, buildah and podman if they are missing.
# 2. The base image: `debootstrap --variant=minbase bookworm` from the Debian mirror apt uses,
#    with Debian's python3 (3.11), python3-venv, python3-pip and ca-certificates, imported with
#    `podman import` as localhost/vigil-base:bookworm. The tarball is cached in
#    $VIGIL_IMAGE_CACHE (default /var/tmp/vigil-image-base), so reruns skip this step;
#    VIGIL_IMAGE_REFRESH_BASE=1 makes it again (Debian's security updates).
# 3. `buildah bud --isolation chroot` of the Dockerfile on that base (layers cached), with this
#    machine's CA bundle as the build secret "ca" (pip reaches PyPI through a TLS-intercepting
#    proxy here). The bundle is mounted for pip's RUN only and is checked not to be in the image.
# 4. A container of the image (`buildah from`, `buildah run --isolation chroot`, host network):
#    every module of app/ imports; the one-shot migration step (vigil migrate && vigil protocol
#    load) on a fresh, uniquely named PostgreSQL database at 127.0.0.1:5432 (user postgres,
#    dropped afterwards), or on SQLite inside the container if PostgreSQL does not answer; then
#    the image's default command serves on a free port until /readyz and /healthz answer 200.
# 5. The image has no C compiler or build tool, runs as 10001:10001 (the server's processes
#    too), keeps its HEALTHCHECK, and holds neither the secret's file nor any certificate that
#    only the build secret had.
# Then it stops the server and removes the container and the database; the image stays
# (localhost/vigil:test, the next run's cache). Exits non-zero, saying why, at the first failure.
#
# Settings (environment): VIGIL_IMAGE (tag, default localhost/vigil:test), VIGIL_IMAGE_CACHE,
# VIGIL_IMAGE_REFRESH_BASE, VIGIL_IMAGE_CHECK_DB (auto | postgresql | sqlite, default auto),
# VIGIL_BUILD_CA (the bundle given as the secret, default /etc/ssl/certs/ca-certificates.crt;
# empty: none), VIGIL_PIP_INDEX_URL (the index pip uses in the build, default
# https://pypi.org/simple: this machine's pip configuration points at local directories the
# build cannot see), VIGIL_DEBIAN_MIRROR (default: the first Debian mirror in apt's sources).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

IMAGE=${VIGIL_IMAGE:-localhost/vigil:test}
CACHE=${VIGIL_IMAGE_CACHE:-/var/tmp/vigil-image-base}
SUITE=bookworm
BASE_PACKAGES=python3,python3-venv,python3-pip,ca-certificates
BASE_IMAGE=localhost/vigil-base:${SUITE}
BASE_TAR=$CACHE/base-${SUITE}.tar
CA_BUNDLE=${VIGIL_BUILD_CA-/etc/ssl/certs/ca-certificates.crt}
PIP_INDEX=${VIGIL_PIP_INDEX_URL:-https://pypi.org/simple}
CHECK_DB=${VIGIL_IMAGE_CHECK_DB:-auto}
PG_HOST=127.0.0.1
PG_PORT=5432
PG_ADMIN_URL="postgresql://postgres@${PG_HOST}:${PG_PORT}/postgres"

CTR="vigil-image-check-$$"
CTR_CREATED=0
MOUNTED=0
SERVER_PID=""
PG_DB=""
LOGS=$(mktemp -d -t vigil-image.XXXXXX)
START=$SECONDS
T0=$SECONDS

say() { echo "--- $*"; }
die() {
    echo "build_image.sh: FAILED: $*" >&2
    exit 1
}
step_done() {  # step_done WHAT: print how long the step took
    say "$1 ($((SECONDS - T0))s)"
    T0=$SECONDS
}
show_log() {  # show_log FILE [LINES]
    echo "--- last ${2:-40} lines of $1:" >&2
    tail -n "${2:-40}" "$1" >&2
}

cleanup() {
    local status=$?
    set +e
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM -- "-$SERVER_PID" 2>/dev/null
        local _
        for _ in $(seq 1 40); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.25
        done
        kill -KILL -- "-$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    if [[ -n $PG_DB ]]; then
        if in_container python - "$PG_ADMIN_URL" "$PG_DB" <<'PY'; then
import sys

import psycopg

with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    conn.execute(f'DROP DATABASE IF EXISTS "{sys.argv[2]}" WITH (FORCE)')
PY
            echo "dropped database $PG_DB"
        else
            echo "could not drop database $PG_DB" >&2
            status=1
        fi
    fi
    ((MOUNTED)) && buildah umount "$CTR" >/dev/null
    ((CTR_CREATED)) && buildah rm "$CTR" >/dev/null
    rm -rf "$LOGS"
    if [[ $status == 0 ]]; then
        echo "=== image $IMAGE built and run: all checks passed ($((SECONDS - START))s)"
    else
        echo "=== build_image.sh FAILED (exit $status) after $((SECONDS - START))s" >&2
    fi
    exit "$status"
}
trap cleanup EXIT

in_container() {  # in_container [-e NAME=VALUE ...] COMMAND...: run in the image's container
    local env=()
    while [[ ${1-} == -e ]]; do
        env+=(-e "$2")
        shift 2
    done
    buildah run --isolation chroot --network host "${env[@]}" "$CTR" -- "$@"
}

http_status() {  # http_status URL: the status code, 000 if nothing answers
    if command -v curl >/dev/null; then
        curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" || true
    else
        python3 - "$1" <<'PY' || echo 000
import sys
import urllib.error
import urllib.request

try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
PY
    fi
}

# --- 1. tools ------------------------------------------------------------------------------------

[[ $EUID == 0 ]] || die "run as root (apt-get, debootstrap, chroot and buildah's storage need it)"
mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock -w 1800 9 || die "another build_image.sh holds $CACHE/lock"

missing=()
for tool in debootstrap buildah podman; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
    say "apt-get install ${missing[*]} (log: $LOGS/apt-get.log)"
    export DEBIAN_FRONTEND=noninteractive
    # podman's Recommends bring uidmap, fuse-overlayfs and slirp4netns (for rootless use).
    if ! apt-get install -y -q debootstrap buildah podman >"$LOGS/apt-get.log" 2>&1; then
        # shellcheck disable=SC2015  # the die runs if either fails
        apt-get update -q >>"$LOGS/apt-get.log" 2>&1 \
            && apt-get install -y -q debootstrap buildah podman >>"$LOGS/apt-get.log" 2>&1 \
            || { show_log "$LOGS/apt-get.log" 20; die "apt-get install debootstrap buildah podman"; }
    fi
fi
buildah --version
step_done "tools ready"

# --- 2. the Debian base image --------------------------------------------------------------------

debian_mirror() {  # the first Debian archive (not the security one) in apt's sources
    if [[ -n ${VIGIL_DEBIAN_MIRROR-} ]]; then
        echo "$VIGIL_DEBIAN_MIRROR"
        return
    fi
    local uri
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
        2>/dev/null | grep -oE '(https?|file)://[^ ]*/debian/?( |$)' | grep -v security | head -n1 \
        | tr -d ' ') || true
    echo "${uri:-http://deb.debian.org/debian}"
}

stamp="$SUITE $BASE_PACKAGES"
if [[ ${VIGIL_IMAGE_REFRESH_BASE-} == 1 || ! -s $BASE_TAR || $(cat "$BASE_TAR.stamp" 2>/dev/null) != "$stamp" ]]; then
    mirror=$(debian_mirror)
    rootfs="$CACHE/rootfs.partial"
    rm -rf "$rootfs" "$BASE_TAR" "$BASE_TAR.stamp"
    say "debootstrap --variant=minbase $SUITE from $mirror with $BASE_PACKAGES (log: $LOGS/debootstrap.log)"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$rootfs" "$mirror" \
        >"$LOGS/debootstrap.log" 2>&1 \
        || { show_log "$LOGS/debootstrap.log"; die "debootstrap $SUITE from $mirror"; }
    chroot "$rootfs" python3 -c 'import sys, venv; assert sys.version_info >= (3, 11), sys.version' \
        || die "the base's python3 is not 3.11+ with venv"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar --numeric-owner -C "$rootfs" -cf "$BASE_TAR.partial" .
    mv "$BASE_TAR.partial" "$BASE_TAR"
    rm -rf "$rootfs"
    echo "$stamp" >"$BASE_TAR.stamp"
    podman rmi -f "$BASE_IMAGE" >/dev/null 2>&1 || true
    step_done "base made: $BASE_TAR"
else
    say "base cached: $BASE_TAR (VIGIL_IMAGE_REFRESH_BASE=1 makes it again)"
fi
if ! podman image exists "$BASE_IMAGE"; then
    podman import --change 'CMD ["/bin/bash"]' "$BASE_TAR" "$BASE_IMAGE" >"$LOGS/import.log" 2>&1 \
        || { show_log "$LOGS/import.log"; die "podman import $BASE_TAR"; }
    step_done "imported $BASE_IMAGE"
fi

# --- 3. the build --------------------------------------------------------------------------------

secret=()
extra_certs="$LOGS/extra-certs.txt"
: >"$extra_certs"
if [[ -n $CA_BUNDLE ]]; then
    [[ -s $CA_BUNDLE ]] || die "VIGIL_BUILD_CA: no CA bundle at $CA_BUNDLE"
    secret=(--secret "id=ca,src=$CA_BUNDLE")
fi
say "buildah bud --build-arg BASE_IMAGE=$BASE_IMAGE ${secret[*]} -t $IMAGE (log: $LOGS/build.log)"
buildah bud --isolation chroot --format docker --layers \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "PIP_INDEX_URL=$PIP_INDEX" \
    "${secret[@]}" -t "$IMAGE" . >"$LOGS/build.log" 2>&1 \
    || { show_log "$LOGS/build.log" 60; die "buildah bud of the Dockerfile"; }
step_done "built $IMAGE ($(grep -c 'Using cache' "$LOGS/build.log" || true) steps from the cache)"

# --- 4. run it -----------------------------------------------------------------------------------

buildah inspect --type image "$IMAGE" >"$LOGS/inspect.json"
# The image's configuration (docker format, so the HEALTHCHECK is kept); its CMD into $LOGS/cmd.
python3 - "$LOGS/inspect.json" "$LOGS/cmd" <<'PY' || die "the image's configuration (above)"
import json
import sys

config = json.load(open(sys.argv[1]))["Docker"]["config"]
problems = []
if config.get("User") != "10001:10001":
    problems.append(f"its user is {config.get('User')!r}, not 10001:10001")
if "/healthz" not in " ".join((config.get("Healthcheck") or {}).get("Test") or []):
    problems.append(f"it has no HEALTHCHECK on /healthz: {config.get('Healthcheck')}")
command = config.get("Cmd") or []
if "vigil serve" not in " ".join(command) or "migrate" in " ".join(command):
    problems.append(f"its CMD should serve only (migrations are a separate step): {command}")
for problem in problems:
    print(f"the image: {problem}", file=sys.stderr)
with open(sys.argv[2], "w") as out:
    out.write("".join(f"{arg}\0" for arg in command))
sys.exit(1 if problems else 0)
PY

buildah from --pull=false --name "$CTR" "$IMAGE" >/dev/null
CTR_CREATED=1
uid=$(in_container id -u)
[[ $uid == 10001 ]] || die "commands in the image run as uid $uid, not 10001"

secret_key=$(in_container python -c 'import secrets; print(secrets.token_urlsafe(32))')
vigil_env=(-e "VIGIL_SECRET_KEY=$secret_key" -e VIGIL_LOG_LEVEL=warning)

in_container "${vigil_env[@]}" python - >"$LOGS/imports.log" 2>&1 <<'PY' \
    || { show_log "$LOGS/imports.log"; die "modules of app/ do not import with the image's dependencies (pyproject.toml [project] dependencies)"; }
import importlib
import pkgutil
import sys

import app

failed = {}
for module in pkgutil.walk_packages(app.__path__, "app."):
    if not module.name.endswith("__main__"):
        try:
            importlib.import_module(module.name)
        except Exception as exc:
            failed[module.name] = repr(exc)
for name, error in failed.items():
    print(f"{name}: {error}")
sys.exit(1 if failed else 0)
PY
step_done "every module of app/ imports in the image"

postgres_answers() {
    in_container python - "$PG_ADMIN_URL" >/dev/null 2>&1 <<'PY'
import sys

import psycopg

psycopg.connect(sys.argv[1], connect_timeout=3).close()
PY
}

case $CHECK_DB in
    auto | postgresql)
        if postgres_answers; then
            CHECK_DB=postgresql
        elif [[ $CHECK_DB == postgresql ]]; then
            die "PostgreSQL does not answer at $PG_ADMIN_URL"
        else
            say "PostgreSQL does not answer at ${PG_HOST}:${PG_PORT}: SQLite inside the container"
            CHECK_DB=sqlite
        fi
        ;;
    sqlite) ;;
    *) die "VIGIL_IMAGE_CHECK_DB is auto, postgresql or sqlite, not '$CHECK_DB'" ;;
esac
if [[ $CHECK_DB == postgresql ]]; then
    name="vigil_image_$(date +%Y%m%d%H%M%S)_$$_${RANDOM}"
    in_container python - "$PG_ADMIN_URL" "$name" <<'PY' || die "CREATE DATABASE $name"
import sys

import psycopg

with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    conn.execute(f'CREATE DATABASE "{sys.argv[2]}"')
PY
    PG_DB=$name
    vigil_env+=(-e "VIGIL_DATABASE_URL=postgresql+psycopg://postgres@${PG_HOST}:${PG_PORT}/${PG_DB}")
    say "created database $PG_DB"
fi

in_container "${vigil_env[@]}" sh -c 'vigil migrate && vigil protocol load' \
    >"$LOGS/migrate.log" 2>&1 || { show_log "$LOGS/migrate.log"; die "the migration step"; }
cat "$LOGS/migrate.log"
step_done "migration step (vigil migrate && vigil protocol load) on $CHECK_DB"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The image's own default command (CMD), two workers, as the image's user.
mapfile -d '' -t cmd <"$LOGS/cmd"
setsid buildah run --isolation chroot --network host "${vigil_env[@]}" -e "VIGIL_PORT=$port" \
    -e VIGIL_WORKERS=2 "$CTR" -- "${cmd[@]}" >"$LOGS/serve.log" 2>&1 </dev/null &
SERVER_PID=$!
base_url="http://127.0.0.1:${port}"
ready=""
for _ in $(seq 1 240); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        SERVER_PID=""
        show_log "$LOGS/serve.log"
        die "vigil serve exited before answering"
    fi
    if [[ $(http_status "$base_url/readyz") == 200 ]]; then
        ready=1
        break
    fi
    sleep 0.5
done
[[ -n $ready ]] || { show_log "$LOGS/serve.log"; die "$base_url/readyz did not answer 200 within 120 s"; }
health=$(http_status "$base_url/healthz")
[[ $health == 200 ]] || die "$base_url/healthz answered $health"
server_uids=$(ps -o uid=,args= -s "$SERVER_PID" | awk '$2 ~ "^/opt/venv/bin/python" {print $1}' | sort -u | tr '\n' ' ')
[[ $server_uids == "10001 " ]] || die "the server's processes run as uid(s) '$server_uids', not 10001"
step_done "served: $base_url/readyz 200, /healthz 200, processes as uid 10001"

# --- 5. what the image holds ---------------------------------------------------------------------

mnt=$(buildah mount "$CTR")
MOUNTED=1
tools=$(find "$mnt/usr/bin" "$mnt/usr/local/bin" "$mnt/bin" "$mnt/usr/sbin" "$mnt/opt/venv/bin" \
    \( -name 'gcc*' -o -name 'g++*' -o -name cc -o -name 'c++' -o -name cpp -o -name 'cpp-[0-9]*' -o -name 'clang*' \
    -o -name '*-linux-gnu-gcc*' -o -name '*-linux-gnu-as' -o -name '*-linux-gnu-ld*' -o -name ld \
    -o -name as -o -name make \) 2>/dev/null | sed "s|^$mnt||" | sort -u || true)
[[ -z $tools ]] || die "build tools in the image: $tools"
dev_packages=$(grep -oE '^Package: (gcc(-[0-9]+)?|g\+\+(-[0-9]+)?|cpp(-[0-9]+)?|binutils|make|build-essential|libc6-dev|python3(\.[0-9]+)?-dev|clang)$' \
    "$mnt/var/lib/dpkg/status" 2>/dev/null || true)
[[ -z $dev_packages ]] || die "build packages in the image: $dev_packages"
[[ ! -e $mnt/run/secrets/ca ]] || die "the build secret's file /run/secrets/ca is in the image"
if [[ -n $CA_BUNDLE ]]; then
    # One base64 line from the middle of each certificate the secret has and the image's own
    # bundle has not: none of them may appear anywhere in the image.
    python3 - "$CA_BUNDLE" "$mnt/etc/ssl/certs/ca-certificates.crt" >"$extra_certs" <<'PY'
import re
import sys

def certificates(path):
    pem = open(path, encoding="ascii", errors="replace").read()
    return set(re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", pem, re.S))

for cert in certificates(sys.argv[1]) - certificates(sys.argv[2]):
    lines = [line for line in cert.splitlines() if len(line) == 64]
    if lines:
        print(lines[len(lines) // 2])
PY
    if [[ -s $extra_certs ]]; then
        found=$(grep -rlF -f "$extra_certs" "$mnt" 2>/dev/null | sed "s|^$mnt||" || true)
        [[ -z $found ]] || die "a certificate of the build secret is in the image: $found"
        say "none of the $(wc -l <"$extra_certs") certificate(s) only the build secret had is in the image"
    else
        say "the build secret holds no certificate beyond the image's own bundle"
    fi
fi
step_done "no compiler or build tool, no build secret in the image"

#!/usr/bin/env bash
# The image built and run by a real container engine, on a machine with no Docker engine and
# no reachable image registry (this project's CI machine): Debian's podman with runc.
#
#   1. installs podman, runc and debootstrap from Debian when missing, and writes a
#      containers.conf of its own (no default ulimits: the sandbox refuses setrlimit; runc:
#      crun refuses the hybrid cgroups; no systemd) exported as CONTAINERS_CONF. The
#      machine's /etc/containers is never touched;
#   2. makes the base images both Dockerfiles name, under exactly their tags, when missing,
#      each labelled as a local stand-in: the builder (rust:1.95-slim-bookworm) from a
#      `debootstrap --variant=minbase bookworm` root with gcc, pkg-config, binutils, libc6-dev
#      and the host's Rust 1.95 toolchain laid out as the official image lays it out; the
#      runtime (gcr.io/distroless/cc-debian12:nonroot) from the files of Debian's libc6,
#      libgcc-s1, ca-certificates and tzdata only, nonroot 65532, no shell, no package
#      manager; the consumer's (python:3.12-slim-bookworm) from a debootstrap root with
#      Debian's Python 3.11 in a venv at /usr/local (the tag's 3.12 is not in bookworm);
#   3. `podman build --pull=never` on the unchanged Dockerfile and examples/consumer/Dockerfile;
#   4. runs the receiver's image against the machine's Postgres (through a TCP proxy of its
#      own, a database of its own) with the webhook secret in a read-only mount, a certificate
#      it makes mounted read-only, --read-only and --cap-drop=ALL: the image's HEALTHCHECK,
#      a signed event (200) and its duplicate (200, one row), a Postgres cut and return,
#      SIGTERM with a request in flight (drained, exit 0 within shutdown_grace_ms), the
#      image's size (< 60 MB), its user (65532) and no shell; and the containers that must
#      refuse to start (no secret, a missing secret file, an unreachable database).
#
# Base images and build layers stay in podman's store (/var/lib/containers), so a warm run
# only rebuilds what changed. AUDIAN_CONTAINER_CONTEXT: another build context (e.g. a
# `git archive HEAD` export) instead of the repository root. Needs root, Postgres on
# 127.0.0.1:5432 (user postgres, trust), network to deb.debian.org, crates.io and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
context=$(realpath "${AUDIAN_CONTAINER_CONTEXT:-$repo}")

RUST_VERSION=1.95.0
RUST_TOOLCHAIN=$RUST_VERSION-x86_64-unknown-linux-gnu
BUILDER_TAG=docker.io/library/rust:1.95-slim-bookworm
RUNTIME_TAG=gcr.io/distroless/cc-debian12:nonroot
PYTHON_TAG=docker.io/library/python:3.12-slim-bookworm
IMAGE=localhost/audian-receiver:container-check
CONSUMER_IMAGE=localhost/audian-sample-consumer:container-check
MAX_IMAGE_BYTES=60000000
GRACE_MS=10000
DATABASE=audian_receiver_container_check
POSTGRES=postgres://postgres@127.0.0.1:5432
STAND_IN="local stand-in made by audian-receiver's scripts/container-check.sh from Debian bookworm packages; NOT the official image"

cache=${XDG_CACHE_HOME:-$HOME/.cache}/audian-receiver-ci/container
started=$(date +%s)

log() { printf '==> container: %s\n' "$*"; }
fail() { echo "container-check: FAIL: $*" >&2; exit 1; }
since() { echo "$(($(date +%s) - $1)) s"; }

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
}

# --- 1. the engine ---------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || fail "run as root (podman's store under /var/lib/containers, debootstrap)"
missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]} (Debian)"
  apt_install "${missing[@]}"
fi
mkdir -p "$cache"
export CONTAINERS_CONF=$cache/containers.conf
cat >"$CONTAINERS_CONF" <<'EOF'
# Written by audian-receiver's scripts/container-check.sh, used through CONTAINERS_CONF only.
[containers]
# The sandbox refuses setrlimit: podman's default nofile/nproc ulimits would fail every start.
default_ulimits = []

[engine]
# crun refuses this machine's hybrid (v1 + v2) cgroups; runc works.
runtime = "runc"
# No systemd here: cgroups by hand and events to a file, not the journal.
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
log "$(podman --version), $(runc --version | head -n 1), CONTAINERS_CONF=$CONTAINERS_CONF"

# --- 2. base images ----------------------------------------------------------------------
# The tags as the Dockerfiles write them, normalised the way the engine does.
from_tags() { sed -n 's/^FROM[[:space:]]\{1,\}\([^[:space:]]\{1,\}\).*/\1/p' "$1"; }
normalise() {
  case $1 in
    */*.*/* | *.*/* | localhost/*) echo "$1" ;;
    */*) echo "docker.io/$1" ;;
    *) echo "docker.io/library/$1" ;;
  esac
}
mapfile -t receiver_froms < <(from_tags "$context/Dockerfile")
mapfile -t consumer_froms < <(from_tags "$context/examples/consumer/Dockerfile")
if [ "${#receiver_froms[@]}" -ne 2 ] || [ "$(normalise "${receiver_froms[0]}")" != "$BUILDER_TAG" ] \
  || [ "$(normalise "${receiver_froms[1]}")" != "$RUNTIME_TAG" ]; then
  fail "the Dockerfile's FROM lines (${receiver_froms[*]}) are not $BUILDER_TAG and $RUNTIME_TAG: update this script"
fi
[ "$(normalise "${consumer_froms[0]}")" = "$PYTHON_TAG" ] \
  || fail "examples/consumer/Dockerfile's FROM (${consumer_froms[*]}) is not $PYTHON_TAG: update this script"

# The Debian mirror apt itself uses (deb822 .sources first, then one-line .list files).
apt_mirror() {
  local url=""
  if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
    url=$(awk 'BEGIN { RS = ""; FS = "\n" }
      { uri = ""; suite = 0; deb = 0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { split($i, a, /[[:space:]]+/); uri = a[2] }
          if ($i ~ /^Types:.*(^|[[:space:]])deb([[:space:]]|$)/) deb = 1
          if ($i ~ /^Suites:.*[[:space:]]bookworm([[:space:]]|$)/) suite = 1
        }
        if (uri != "" && suite && deb) { print uri; exit } }' /etc/apt/sources.list.d/*.sources)
  fi
  if [ -z "$url" ]; then
    url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | sed 's/\[[^]]*\]//' | awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }')
  fi
  [ -n "$url" ] || fail "no bookworm mirror in /etc/apt/sources.list{,.d}"
  echo "$url"
}

build_tmp=""
debootstrap_root() { # dir packages
  debootstrap --variant=minbase --include="$2" bookworm "$1" "$mirror" >"$1.log" 2>&1 \
    || { tail -n 20 "$1.log" >&2; fail "debootstrap of $1 failed (log above)"; }
}
import_root() { # dir tag changes...
  local dir=$1 tag=$2
  shift 2
  local changes=() change
  for change in "$@"; do changes+=(--change "$change"); done
  tar -C "$dir" --numeric-owner -cf - . \
    | podman import --quiet "${changes[@]}" --message "$STAND_IN" - "$tag" >/dev/null
}
label_changes() { # name version
  printf '%s\n' \
    "LABEL org.opencontainers.image.description=\"$STAND_IN\"" \
    "LABEL org.opencontainers.image.title=\"stand-in for $1\"" \
    "LABEL org.opencontainers.image.version=\"$2\"" \
    "LABEL io.audian.stand-in=\"true\""
}

need_builder=0 need_runtime=0 need_python=0
podman image exists "$BUILDER_TAG" || need_builder=1
podman image exists "$RUNTIME_TAG" || need_runtime=1
podman image exists "$PYTHON_TAG" || need_python=1
if [ $((need_builder + need_runtime + need_python)) -gt 0 ]; then
  mirror=$(apt_mirror)
  build_tmp=$(mktemp -d "$cache/bases.XXXXXX")
  trap 'rm -rf "$build_tmp"' EXIT
  log "making the missing base images from Debian bookworm ($mirror) in $build_tmp"
  t0=$(date +%s)
  # The builder's root also supplies the runtime's packages (its apt cache) and CA bundle.
  builder_root=$build_tmp/builder
  python_root=$build_tmp/python
  python_pid=""
  if [ "$need_python" -eq 1 ]; then
    debootstrap_root "$python_root" python3,python3-venv,ca-certificates &
    python_pid=$!
  fi
  if [ $((need_builder + need_runtime)) -gt 0 ]; then
    debootstrap_root "$builder_root" gcc,pkg-config,binutils,libc6-dev,ca-certificates
  fi
  if [ -n "$python_pid" ]; then wait "$python_pid"; fi
  log "debootstrap done ($(since "$t0"))"

  if [ "$need_runtime" -eq 1 ]; then
    # As distroless is made: the files of these packages, the CA bundle ca-certificates'
    # postinst generates, passwd/group with nonroot, and nothing else (no shell, no dpkg).
    rt=$build_tmp/runtime
    mkdir -p "$rt"
    versions=()
    for pkg in libc6 libgcc-s1 ca-certificates tzdata; do
      deb=$(compgen -G "$builder_root/var/cache/apt/archives/${pkg}_*.deb" | head -n 1) \
        || fail "no $pkg .deb in the debootstrap root's apt cache"
      dpkg-deb -x "$deb" "$rt"
      versions+=("$(basename "$deb" .deb)")
    done
    rm -f "$rt/usr/sbin/update-ca-certificates" # a /bin/sh script: there is no /bin/sh
    rmdir "$rt/usr/sbin" 2>/dev/null || true
    install -D -m 0644 "$builder_root/etc/ssl/certs/ca-certificates.crt" "$rt/etc/ssl/certs/ca-certificates.crt"
    printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
      'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
      'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$rt/etc/passwd"
    printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$rt/etc/group"
    install -d -m 0700 "$rt/root"
    install -d -m 0700 -o 65532 -g 65532 "$rt/home/nonroot"
    install -d -m 1777 "$rt/tmp"
    for forbidden in bin/sh bin/bash bin/dash usr/bin/dpkg usr/bin/apt; do
      [ ! -e "$rt/$forbidden" ] || fail "the runtime root has $forbidden"
    done
    mapfile -t changes < <(label_changes "$RUNTIME_TAG" "debian12: ${versions[*]}")
    import_root "$rt" "$RUNTIME_TAG" "${changes[@]}" \
      'USER 65532:65532' 'WORKDIR /home/nonroot' \
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'
    log "made $RUNTIME_TAG (${versions[*]})"
  fi

  if [ "$need_builder" -eq 1 ]; then
    # The host's rustup toolchain 1.95 (the tag's version), without its HTML docs, at the
    # official image's paths: RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo.
    toolchain=""
    for candidate in "${RUSTUP_HOME:-$HOME/.rustup}/toolchains/$RUST_TOOLCHAIN" \
      "${RUSTUP_HOME:-$HOME/.rustup}/toolchains/stable-x86_64-unknown-linux-gnu"; do
      if [ -x "$candidate/bin/rustc" ] && "$candidate/bin/rustc" --version | grep -q "^rustc $RUST_VERSION "; then
        toolchain=$(realpath "$candidate")
        break
      fi
    done
    [ -n "$toolchain" ] || fail "no Rust $RUST_VERSION toolchain in ${RUSTUP_HOME:-$HOME/.rustup}"
    rustup_bin=$(realpath "${CARGO_HOME:-$HOME/.cargo}/bin/rustup")
    dest=$builder_root/usr/local/rustup/toolchains/$RUST_TOOLCHAIN
    mkdir -p "$dest" "$builder_root/usr/local/cargo/bin"
    tar -C "$toolchain" --exclude=./share/doc/rust/html -cf - . | tar -C "$dest" -xf -
    install -m 0755 "$rustup_bin" "$builder_root/usr/local/cargo/bin/rustup"
    for proxy in cargo cargo-clippy cargo-fmt clippy-driver rust-gdb rust-gdbgui rust-lldb rustc rustdoc rustfmt; do
      ln -sf rustup "$builder_root/usr/local/cargo/bin/$proxy"
    done
    printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\n\n[overrides]\n' \
      "$RUST_TOOLCHAIN" >"$builder_root/usr/local/rustup/settings.toml"
    chmod -R a+w "$builder_root/usr/local/rustup" "$builder_root/usr/local/cargo"
    rm -rf "$builder_root"/var/cache/apt/archives/*.deb "$builder_root"/var/lib/apt/lists/*
    mapfile -t changes < <(label_changes "$BUILDER_TAG" "rust $RUST_VERSION on debian bookworm minbase")
    import_root "$builder_root" "$BUILDER_TAG" "${changes[@]}" \
      'ENV RUSTUP_HOME=/usr/local/rustup' 'ENV CARGO_HOME=/usr/local/cargo' \
      'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      "ENV RUST_VERSION=$RUST_VERSION" 'CMD ["/bin/bash"]'
    podman run --rm --network none "$BUILDER_TAG" sh -c 'cargo --version && rustc --version && gcc --version | head -n 1' \
      | sed 's/^/    /'
    log "made $BUILDER_TAG"
  fi

  if [ "$need_python" -eq 1 ]; then
    # Debian's Python in a venv at /usr/local, so that `python` and `pip` are on PATH in
    # /usr/local/bin and pip installs there, as in the official image (Debian's own Python
    # refuses pip installs: PEP 668). Debian bookworm has 3.11, not the tag's 3.12.
    chroot "$python_root" /usr/bin/python3 -m venv /usr/local
    chroot "$python_root" /usr/local/bin/pip --version >/dev/null
    pyversion=$(chroot "$python_root" /usr/local/bin/python --version)
    rm -rf "$python_root"/var/cache/apt/archives/*.deb "$python_root"/var/lib/apt/lists/*
    mapfile -t changes < <(label_changes "$PYTHON_TAG" "$pyversion (Debian bookworm), not 3.12")
    import_root "$python_root" "$PYTHON_TAG" "${changes[@]}" \
      'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
      'ENV LANG=C.UTF-8' 'CMD ["python3"]'
    log "made $PYTHON_TAG ($pyversion: the stand-in's Python is Debian's, not 3.12)"
  fi
  rm -rf "$build_tmp"
  build_tmp=""
  trap - EXIT
  log "base images made in $(since "$t0")"
else
  log "base images present: $BUILDER_TAG, $RUNTIME_TAG, $PYTHON_TAG"
fi
for tag in "$BUILDER_TAG" "$RUNTIME_TAG" "$PYTHON_TAG"; do
  [ "$(podman image inspect --format '{{index .Labels "io.audian.stand-in"}}' "$tag")" = true ] \
    || log "note: $tag is not this script's stand-in (a real image is in the store)"
done

# --- 3. the builds -----------------------------------------------------------------------
# --format docker: the OCI format has no HEALTHCHECK (buildah drops it). --network host: the
# build's cargo fetches crates (and pip, PyPI) without a container network. The build's RUN
# steps see this machine's CA bundle (bind-mounted read-only over the image's, never stored
# in a layer): here egress passes a TLS-intercepting proxy whose CA only the host trusts
# (/usr/local/share/ca-certificates); elsewhere it is the same Debian bundle.
build_opts=(--pull=never --format docker --network host)
if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
  build_opts+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
fi
t0=$(date +%s)
log "podman build --pull=never the Dockerfile (from $context)"
if ! nice -n 10 podman build "${build_opts[@]}" \
  -f "$context/Dockerfile" -t "$IMAGE" "$context" 2>&1 | sed 's/^/    /'; then
  fail "podman build of the Dockerfile failed"
fi
log "receiver image built in $(since "$t0")"
t0=$(date +%s)
log "podman build --pull=never examples/consumer/Dockerfile"
if ! nice -n 10 podman build "${build_opts[@]}" \
  -t "$CONSUMER_IMAGE" "$context/examples/consumer" 2>&1 | sed 's/^/    /'; then
  fail "podman build of examples/consumer/Dockerfile failed"
fi
podman run --rm --network none "$CONSUMER_IMAGE" python -c \
  'import os, nats, importlib.metadata as m; print("    consumer image: uid", os.getuid(), "nats-py", m.version("nats-py"))'
[ "$(podman image inspect --format '{{.Config.User}}' "$CONSUMER_IMAGE")" = 10001 ] \
  || fail "the consumer image does not run as 10001"
log "consumer image built in $(since "$t0")"

# --- 4. the image run --------------------------------------------------------------------
# Image facts first: size, user, no shell, no package manager.
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
log "image $IMAGE: $size bytes ($((size / 1000000)) MB)"
[ "$size" -lt "$MAX_IMAGE_BYTES" ] || fail "the image is $size bytes, not under $MAX_IMAGE_BYTES"
[ "$(podman image inspect --format '{{.Config.User}}' "$IMAGE")" = 65532:65532 ] \
  || fail "the image's USER is not 65532:65532"
health_test=$(podman image inspect --format '{{json .Config.Healthcheck.Test}}' "$IMAGE")
case $health_test in
  *audian-receiver*healthcheck*) ;;
  *) fail "the image has no HEALTHCHECK running audian-receiver healthcheck (got $health_test)" ;;
esac
if podman run --rm --network none --entrypoint /bin/sh "$IMAGE" -c true >/dev/null 2>&1; then
  fail "podman run --entrypoint /bin/sh succeeded: the image has a shell"
fi
mnt=$(podman image mount "$IMAGE")
for forbidden in bin/sh bin/bash bin/dash bin/busybox usr/bin/dpkg usr/bin/apt usr/bin/apt-get; do
  if [ -e "$mnt/$forbidden" ] || [ -L "$mnt/$forbidden" ]; then
    podman image unmount "$IMAGE" >/dev/null
    fail "the image has /$forbidden"
  fi
done
podman image unmount "$IMAGE" >/dev/null
log "no shell (--entrypoint /bin/sh fails), no dpkg/apt, USER 65532:65532, HEALTHCHECK $health_test"

work=$(mktemp -d "${TMPDIR:-/tmp}/audian-container-check.XXXXXX")
run_id=$(basename "$work" | tr -dc 'a-zA-Z0-9' | tr '[:upper:]' '[:lower:]')
containers=()
proxy_pid=""
cleanup() {
  local c
  for c in "${containers[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
  if [ -n "$proxy_pid" ]; then kill "$proxy_pid" 2>/dev/null || true; wait "$proxy_pid" 2>/dev/null || true; fi
  psql -q "$POSTGRES/postgres" -c "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

(exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null || fail "Postgres is not listening on 127.0.0.1:5432"
psql -q "$POSTGRES/postgres" -c "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" >/dev/null 2>&1

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
admin=$(free_port)
proxy_port=$(free_port)
dead_port=$(free_port)

# The container's only way to Postgres: a TCP proxy that can be cut (every connection closed,
# the port refusing) and restored, never the machine's Postgres itself.
cat >"$work/proxy.py" <<'EOF'
import asyncio, sys
listen, upstream = int(sys.argv[1]), int(sys.argv[2])
async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()
async def handle(reader, writer):
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
    except OSError:
        writer.close()
        return
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen, reuse_address=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
EOF
start_proxy() {
  python3 "$work/proxy.py" "$proxy_port" 5432 &
  proxy_pid=$!
  for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$proxy_port") 2>/dev/null && return 0; sleep 0.1; done
  fail "the TCP proxy did not start"
}
cut_proxy() { kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true; proxy_pid=""; }
start_proxy

# A certificate of its own, mounted read-only; the key readable by 65532 (this test key only).
mkdir -p "$work/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
  -keyout "$work/tls/key.pem" -out "$work/tls/cert.pem" 2>/dev/null
chmod 0644 "$work/tls/key.pem" "$work/tls/cert.pem"
chmod 0755 "$work/tls"

# The webhook secret as a file in a secrets directory mounted read-only, readable by 65532
# only. (A podman secret, `--secret`, cannot be mounted into a --read-only container by
# podman 4.3 with runc: "error mounting ... /run/secrets/NAME: read-only file system".)
secret="container-check-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
install -d -m 0755 "$work/secrets"
printf '%s\n' "$secret" >"$work/secrets/webhook"
chown 65532:65532 "$work/secrets/webhook"
chmod 0400 "$work/secrets/webhook"

# Without systemd podman cannot schedule the healthcheck's timer and says so at each start
# and removal: only that line is dropped (`podman healthcheck run` works without it).
no_timer_noise() { grep -v 'unable to get systemd connection' >&2 || true; }
# run_receiver NAME [podman run options...]: the hardened run every container here shares.
run_receiver() {
  local name=$1
  shift
  containers+=("$name")
  podman run -d --name "$name" --network host --read-only --cap-drop=ALL \
    --security-opt no-new-privileges \
    -e "AUDIAN_RECEIVER__SERVER__LISTEN=127.0.0.1:$port" \
    -e "AUDIAN_RECEIVER__ADMIN__LISTEN=127.0.0.1:$admin" \
    -e "AUDIAN_RECEIVER__SERVER__SHUTDOWN_GRACE_MS=$GRACE_MS" \
    -v "$work/tls:/etc/audian-receiver/tls:ro" \
    "$@" "$IMAGE" >/dev/null 2> >(no_timer_noise)
}
with_secret=(-v "$work/secrets:/run/secrets:ro" -e AUDIAN_WEBHOOK_SECRET_FILE=/run/secrets/webhook)
db_url="postgres://postgres@127.0.0.1:$proxy_port/$DATABASE?sslmode=disable"

# Refusals: each container exits non-zero at once, naming what is wrong.
refuses() { # label expected-pattern key-pattern [options...]
  local label=$1 expect=$2 key=$3 name rc t
  shift 3
  name=audian-check-refuse-$run_id-${#containers[@]}
  t=$(date +%s%N)
  run_receiver "$name" "$@"
  rc=$(timeout 30 podman wait "$name") || fail "$label: still running after 30 s"
  t=$((($(date +%s%N) - t) / 1000000))
  podman logs "$name" >"$work/$name.log" 2>&1
  [ "$rc" -ne 0 ] || fail "$label: exited 0"
  grep -q -E "$expect" "$work/$name.log" || { cat "$work/$name.log" >&2; fail "$label: the log does not say /$expect/"; }
  grep -q -E "$key" "$work/$name.log" \
    || { cat "$work/$name.log" >&2; fail "$label: the message does not name the key (/$key/)"; }
  log "refused, $label: exit $rc after $t ms, the log names $(grep -o -E "$key" "$work/$name.log" | head -n 1)"
  [ "$t" -lt 15000 ] || fail "$label: took $t ms to exit"
}
refuses "no secret" 'AUDIAN_WEBHOOK_SECRET is not set' 'AUDIAN_WEBHOOK_SECRET' -e "DATABASE_URL=$db_url"
refuses "missing secret file" 'cannot read AUDIAN_WEBHOOK_SECRET_FILE' 'AUDIAN_WEBHOOK_SECRET_FILE' \
  -v "$work/secrets:/run/secrets:ro" -e "DATABASE_URL=$db_url" -e AUDIAN_WEBHOOK_SECRET_FILE=/run/secrets/absent
refuses "unreachable database" 'database' 'DATABASE_URL|database\.url' "${with_secret[@]}" \
  -e "DATABASE_URL=postgres://postgres@127.0.0.1:$dead_port/$DATABASE?sslmode=disable"

# The receiver, as an operator runs it.
name=audian-check-$run_id
run_receiver "$name" "${with_secret[@]}" -e "DATABASE_URL=$db_url"
t0=$(date +%s)
healthy=""
for _ in $(seq 1 60); do
  [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] \
    || { podman logs "$name" >&2; fail "the receiver exited"; }
  if podman healthcheck run "$name" >/dev/null 2>&1; then healthy=1; break; fi
  sleep 0.5
done
[ -n "$healthy" ] || { podman logs "$name" | tail -n 20 >&2; fail "the image's HEALTHCHECK never passed"; }
log "HEALTHCHECK (podman healthcheck run): healthy after $(since "$t0"), status $(podman inspect --format '{{.State.Healthcheck.Status}}' "$name")"
pid=$(podman inspect --format '{{.State.Pid}}' "$name")
uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status")
[ "$uids" = "65532 65532 65532 65532" ] || fail "the receiver runs as uid $uids, not 65532"
caps=$(awk '/^CapEff:/ { print $2 }' "/proc/$pid/status")
[ "$caps" = 0000000000000000 ] || fail "the receiver has capabilities $caps"
log "the receiver runs as uid 65532 with no capabilities (CapEff $caps), root filesystem read-only: $(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$name")"

url="https://localhost:$port/webhook"
curl_tls=(curl -sS --max-time 20 --cacert "$work/tls/cert.pem" --resolve "localhost:$port:127.0.0.1")
post() { # body -> "STATUS BODY"
  local sig out
  sig=$(printf '%s' "$1" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)
  out=$("${curl_tls[@]}" -o - -w ' %{http_code}' -H 'Content-Type: application/json' \
    -H "X-Audian-Signature: sha256=$sig" -d "$1" "$url") || out="curl-failed $?"
  echo "${out##* } ${out% *}"
}
count_rows() { psql -tA "$POSTGRES/$DATABASE" -c "SELECT count(*) FROM events WHERE event_id = '$1'"; }
body='{"id":"evt_container_check_1","type":"job.completed","data":{"job_id":"j_1"}}'
got=$(post "$body")
[ "$got" = '200 {"status":"ok"}' ] || fail "signed event: got $got"
log "signed event over HTTPS (certificate verified): $got"
got=$(post "$body")
[ "$got" = '200 {"status":"ok"}' ] || fail "duplicate: got $got"
rows=$(count_rows evt_container_check_1)
[ "$rows" = 1 ] || fail "duplicate: $rows rows for the id"
log "the same event again (duplicate): $got, $rows row"

# Postgres cut at the proxy, then back.
readyz() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$admin/readyz" || true; }
cut_proxy
for _ in $(seq 1 40); do [ "$(readyz)" = 503 ] && break; sleep 0.25; done
[ "$(readyz)" = 503 ] || fail "/readyz did not turn 503 with the database cut"
during=$(post '{"id":"evt_container_check_2","type":"job.completed","data":{}}')
[ "${during%% *}" = 503 ] || fail "an event with the database cut: got $during, not 503"
hc_out=$(podman healthcheck run "$name" 2>&1) && fail "HEALTHCHECK healthy with the database cut"
log "database cut: /readyz 503, an event $during, HEALTHCHECK unhealthy: ${hc_out:-exit 1}"
start_proxy
t0=$(date +%s)
for _ in $(seq 1 60); do [ "$(readyz)" = 200 ] && break; sleep 0.5; done
[ "$(readyz)" = 200 ] || fail "/readyz did not come back to 200 after the database returned"
got=$(post '{"id":"evt_container_check_2","type":"job.completed","data":{}}')
[ "$got" = '200 {"status":"ok"}' ] || fail "after the database returned: got $got"
podman healthcheck run "$name" >/dev/null || fail "HEALTHCHECK unhealthy after the database returned"
log "database back: /readyz 200 after $(since "$t0"), the event $got, HEALTHCHECK healthy"

# SIGTERM with a request in flight: it finishes (200), then the process exits 0 in time.
pad=$(head -c 1200 /dev/zero | tr '\0' a)
slow_body="{\"id\":\"evt_container_check_3\",\"type\":\"job.completed\",\"data\":{\"pad\":\"$pad\"}}"
slow_sig=$(printf '%s' "$slow_body" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)
"${curl_tls[@]}" --http1.1 --limit-rate 400 -o "$work/slow.out" -w '%{http_code}' \
  -H 'Content-Type: application/json' -H "X-Audian-Signature: $slow_sig" \
  --data-binary "$slow_body" "$url" >"$work/slow.code" 2>"$work/slow.err" &
slow_pid=$!
sleep 1
t0=$(date +%s%N)
podman stop -t $((GRACE_MS / 1000 + 10)) "$name" >/dev/null 2> >(no_timer_noise)
stop_ms=$((($(date +%s%N) - t0) / 1000000))
wait "$slow_pid" || true
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
podman logs "$name" >"$work/receiver.log" 2>&1
[ "$(cat "$work/slow.code")" = 200 ] || fail "the request in flight at SIGTERM got '$(cat "$work/slow.code")' $(cat "$work/slow.err")"
grep -q '"SIGTERM received"' "$work/receiver.log" || fail "the log has no 'SIGTERM received'"
grep -q '"message":"stopped"' "$work/receiver.log" || { tail -n 5 "$work/receiver.log" >&2; fail "the log has no 'stopped' (drained)"; }
[ "$exit_code" = 0 ] || fail "exit code $exit_code after SIGTERM"
[ "$stop_ms" -lt "$GRACE_MS" ] || fail "podman stop took $stop_ms ms, not under shutdown_grace_ms $GRACE_MS"
[ "$(count_rows evt_container_check_3)" = 1 ] || fail "the request in flight at SIGTERM left no row"
log "podman stop (SIGTERM): the request in flight answered $(cat "$work/slow.code") $(cat "$work/slow.out"), log 'SIGTERM received' then 'stopped', exit $exit_code in $stop_ms ms (< $GRACE_MS)"

# --- 5. compose --------------------------------------------------------------------------
# Not brought up: postgres:15 and nats:2.10-alpine cannot be pulled here, and a stand-in for
# the official Postgres image would have to fake its entrypoint (POSTGRES_USER/PASSWORD/DB
# initialisation). .ci/run keeps `docker-compose config` on the file.
log "compose: not brought up (postgres:15, nats:2.10-alpine unpullable; see README)"
log "container check passed in $(since "$started") (image $((size / 1000000)) MB)"

#!/usr/bin/env bash
# provision.sh: idempotent set-up of a fresh inspection box, run as root (or with --dry-run as anyone).
#
# A Jetson with JetPack, an x86/ARM box with an NVIDIA GPU, or a CPU-only box: checks the platform (and the
# L4T release on a Jetson), installs the Debian packages it needs, creates the service user and folders,
# makes a venv with --system-site-packages (so JetPack's TensorRT and onnxruntime-gpu bindings are used),
# installs the pcb-inspect runtime into it (no torch), trusts a bundle signing key and installs the systemd
# unit. Running it again changes only what differs. --dry-run prints every action instead of doing it.
#
# usage: provision.sh [--dry-run] [--root DIR] [--user NAME] [--runtime PIP-SPEC] [--pip-args "ARGS"]
#                     [--pubkey FILE] [--ort-wheel FILE] [--platform auto|jetson|cuda|cpu] [--python PYTHON]
#                     [--no-service] [--allow-unsupported] [--list-supported]
set -euo pipefail

ROOT=/opt/pcb-inspect
SERVICE_USER=pcb-inspect
RUNTIME=pcb-inspect          # a pip requirement: a name, a version pin, or a wheel copied to the box
PIP_ARGS=""                  # e.g. "--no-index --find-links /srv/wheels" on a plant network without internet
PUBKEY=""
ORT_WHEEL=""                 # onnxruntime-gpu wheel for this JetPack (NVIDIA's Jetson wheels), if JetPack lacks it
PLATFORM=auto
PYTHON=python3
DRY_RUN=0
SERVICE=1
ALLOW_UNSUPPORTED=0
L4T_FILE=${PCB_INSPECT_L4T_FILE:-/etc/nv_tegra_release}
MIN_PYTHON_MINOR=11          # pcb-inspect requires Python >= 3.11

# L4T major release -> what it is and whether this runtime can use it (its system Python must be >= 3.11,
# because JetPack's TensorRT bindings are built for that Python only).
supported_table() {
    cat <<'EOF'
L4T R38  JetPack 7.x  Ubuntu 24.04  Python 3.12  supported
L4T R36  JetPack 6.x  Ubuntu 22.04  Python 3.10  not supported: pcb-inspect needs Python >= 3.11, JetPack 6's TensorRT bindings are for 3.10
L4T R35  JetPack 5.x  Ubuntu 20.04  Python 3.8   not supported: Python too old
x86_64 or aarch64 with an NVIDIA driver (nvidia-smi)  Python >= 3.11  supported (onnxruntime-gpu from PyPI)
x86_64 or aarch64, CPU only                           Python >= 3.11  supported (onnxruntime from PyPI)
EOF
}

say() { printf 'provision: %s\n' "$*"; }
die() { printf 'provision: error: %s\n' "$*" >&2; exit 2; }
run() {
    if [ "$DRY_RUN" = 1 ]; then
        printf 'DRY-RUN:'
        printf ' %q' "$@"
        printf '\n'
    else
        say "+ $*"
        "$@"
    fi
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --root) ROOT=${2:?--root needs a folder}; shift ;;
        --user) SERVICE_USER=${2:?--user needs a name}; shift ;;
        --runtime) RUNTIME=${2:?--runtime needs a pip requirement}; shift ;;
        --pip-args) PIP_ARGS=${2?--pip-args needs a value}; shift ;;
        --pubkey) PUBKEY=${2:?--pubkey needs a file}; shift ;;
        --ort-wheel) ORT_WHEEL=${2:?--ort-wheel needs a file}; shift ;;
        --platform) PLATFORM=${2:?--platform needs auto, jetson, cuda or cpu}; shift ;;
        --python) PYTHON=${2:?--python needs an interpreter}; shift ;;
        --no-service) SERVICE=0 ;;
        --allow-unsupported) ALLOW_UNSUPPORTED=1 ;;
        --list-supported) supported_table; exit 0 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

case "$ROOT" in /*) ;; *) die "--root $ROOT: an absolute path is needed" ;; esac
if [[ ! "$SERVICE_USER" =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || [ "$SERVICE_USER" = root ]; then
    die "--user $SERVICE_USER: an unprivileged user name (lowercase, not root) is needed"
fi
if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
    die "run as root (or with --dry-run to see what it would do)"
fi
[ -z "$PUBKEY" ] || [ -f "$PUBKEY" ] || die "--pubkey $PUBKEY: file not found"
[ -z "$ORT_WHEEL" ] || [ -f "$ORT_WHEEL" ] || die "--ort-wheel $ORT_WHEEL: file not found"

# --- platform ------------------------------------------------------------------------------------------------
if [ "$PLATFORM" = auto ]; then
    if [ -f "$L4T_FILE" ]; then
        PLATFORM=jetson
    elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        PLATFORM=cuda
    else
        PLATFORM=cpu
    fi
fi
case "$PLATFORM" in jetson|cuda|cpu) ;; *) die "--platform $PLATFORM: choose auto, jetson, cuda or cpu" ;; esac
say "platform $PLATFORM ($(uname -m))"

if [ "$PLATFORM" = jetson ]; then
    [ -f "$L4T_FILE" ] || die "$L4T_FILE not found: not a Jetson with JetPack (use --platform cuda or cpu)"
    # first line: "# R36 (release), REVISION: 4.3, GCID: ..., BOARD: ..., EABI: aarch64, DATE: ..."
    L4T_MAJOR=$(sed -n '1s/^# R\([0-9][0-9]*\) (release).*/\1/p' "$L4T_FILE")
    L4T_REV=$(sed -n '1s/.*REVISION: \([0-9.][0-9.]*\).*/\1/p' "$L4T_FILE")
    [ -n "$L4T_MAJOR" ] || die "$L4T_FILE: cannot read the L4T release from '$(head -n 1 "$L4T_FILE")'"
    say "L4T R$L4T_MAJOR.${L4T_REV:-?}"
    case "$L4T_MAJOR" in
        38) ;;
        *)
            supported_table >&2
            if [ "$ALLOW_UNSUPPORTED" = 1 ]; then
                say "warning: L4T R$L4T_MAJOR is not supported; going on because of --allow-unsupported"
            else
                die "L4T R$L4T_MAJOR is not supported (table above); --allow-unsupported to try anyway"
            fi
            ;;
    esac
fi

command -v "$PYTHON" >/dev/null 2>&1 || die "--python $PYTHON: not found"
PY_MINOR=$("$PYTHON" -c 'import sys; print(sys.version_info[1] if sys.version_info[0] == 3 else 0)')
[ "$PY_MINOR" -ge "$MIN_PYTHON_MINOR" ] \
    || die "$PYTHON is 3.$PY_MINOR; pcb-inspect needs 3.$MIN_PYTHON_MINOR or newer (see --list-supported)"

# --- Debian packages -------------------------------------------------------------------------------------------
PACKAGES=(ca-certificates "$(basename "$PYTHON")-venv")
if [ "$PLATFORM" = jetson ]; then
    PACKAGES+=(python3-libnvinfer)  # TensorRT's Python bindings, from JetPack's apt repository
fi
MISSING=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        MISSING+=("$pkg")
    fi
done
if [ "${#MISSING[@]}" -gt 0 ]; then
    run apt-get update
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${MISSING[@]}"
else
    say "Debian packages present: ${PACKAGES[*]}"
fi

# --- user and folders -------------------------------------------------------------------------------------------
if id -u "$SERVICE_USER" >/dev/null 2>&1; then
    say "user $SERVICE_USER exists"
else
    run useradd --system --user-group --home-dir "$ROOT" --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
fi

ensure_dir() {  # ensure_dir DIR MODE OWNER GROUP
    local dir=$1 mode=$2 owner=$3 group=$4
    if [ ! -d "$dir" ]; then
        run install -d -m "$mode" -o "$owner" -g "$group" "$dir"
    elif [ "$(stat -c '%a %U %G' "$dir")" != "${mode#0} $owner $group" ]; then
        run chown "$owner:$group" "$dir"
        run chmod "$mode" "$dir"
    fi
}
ensure_dir "$ROOT" 0755 root root
ensure_dir "$ROOT/releases" 0755 root root
ensure_dir "$ROOT/keys" 0755 root root
ensure_dir "$ROOT/data" 0750 "$SERVICE_USER" "$SERVICE_USER"
ensure_dir "$ROOT/engine-cache" 0750 "$SERVICE_USER" "$SERVICE_USER"

if [ -n "$PUBKEY" ]; then
    KEY_DEST="$ROOT/keys/$(basename "$PUBKEY")"
    if ! cmp -s "$PUBKEY" "$KEY_DEST"; then
        run install -m 0644 -o root -g root "$PUBKEY" "$KEY_DEST"
    fi
fi

# --- venv and runtime ---------------------------------------------------------------------------------------------
VENV="$ROOT/venv"
if [ -x "$VENV/bin/python" ]; then
    grep -q '^include-system-site-packages = true' "$VENV/pyvenv.cfg" \
        || die "$VENV exists without --system-site-packages; remove it and run again"
    say "venv $VENV exists"
else
    run "$PYTHON" -m venv --system-site-packages "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
read -r -a EXTRA <<<"$PIP_ARGS"

# The runtime without extras: numpy, OpenCV, onnxruntime; never torch. pip is idempotent here.
run "${PIP[@]}" install --quiet "${EXTRA[@]}" "$RUNTIME"
case "$PLATFORM" in
    jetson)
        # pip pulled the CPU onnxruntime into the venv, shadowing JetPack's onnxruntime-gpu in the system
        # site-packages: remove it, then use the system one (or the given Jetson wheel).
        run "${PIP[@]}" uninstall --quiet -y onnxruntime
        if [ -n "$ORT_WHEEL" ]; then
            run "${PIP[@]}" install --quiet "${EXTRA[@]}" "$ORT_WHEEL"
        fi
        ;;
    cuda)
        # onnxruntime and onnxruntime-gpu share one import folder: remove the CPU one before the GPU one
        run "${PIP[@]}" uninstall --quiet -y onnxruntime
        run "${PIP[@]}" install --quiet --force-reinstall --no-deps "${EXTRA[@]}" "${ORT_WHEEL:-onnxruntime-gpu}"
        ;;
esac
if [ "$DRY_RUN" = 0 ]; then
    PROVIDERS=$("$VENV/bin/python" -c 'import onnxruntime as o; print(",".join(o.get_available_providers()))') \
        || die "onnxruntime does not import in $VENV (Jetson: install JetPack's onnxruntime-gpu or pass --ort-wheel)"
    say "onnxruntime providers: $PROVIDERS"
    if [ "$PLATFORM" != cpu ] && [[ "$PROVIDERS" != *CUDAExecutionProvider* ]]; then
        say "warning: no CUDA provider; the box will classify on the CPU"
    fi
else
    printf 'DRY-RUN: check that onnxruntime imports in %s and list its providers\n' "$VENV"
fi

# --- service -------------------------------------------------------------------------------------------------------
if [ "$SERVICE" = 1 ]; then
    run "$VENV/bin/pcb-inspect" deploy service --root "$ROOT" --user "$SERVICE_USER" --install
    if [ -L "$ROOT/current" ]; then
        run systemctl start pcb-inspect.service  # no-op when already running
    else
        say "no release active yet: the service starts after the first 'pcb-inspect deploy activate'"
    fi
fi
say "done"

# shellcheck shell=bash
# Shared helpers for scripts/test and scripts/demo. Source it; do not run it.

# Prints `error: MSG` and `hint: HINT` to stderr and exits 1.
mk_die() {
    echo "error: $1" >&2
    if [ $# -ge 2 ] && [ -n "$2" ]; then
        echo "hint: $2" >&2
    fi
    exit 1
}

# Prints a step heading to stderr.
mk_step() {
    echo "==> $*" >&2
}

# Runs a command as root: directly when we are root, else through sudo.
mk_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        mk_die "\`$1\` needs root and sudo is not installed" \
            "run this script as root, or install sudo"
    fi
}

# apt-get update, at most once per script run.
MK_APT_UPDATED=${MK_APT_UPDATED:-0}
mk_apt_install() {
    command -v apt-get >/dev/null 2>&1 ||
        mk_die "cannot install \`$*\`: apt-get not found" \
            "install $* with your system's package manager, then re-run"
    if [ "$MK_APT_UPDATED" -eq 0 ]; then
        mk_step "apt-get update"
        mk_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
            mk_die "\`apt-get update\` failed" "check the network and /etc/apt/sources.list"
        MK_APT_UPDATED=1
    fi
    mk_step "apt-get install -y $*"
    mk_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" ||
        mk_die "\`apt-get install -y $*\` failed" "install it by hand and re-run"
}

# Cargo must be there: the machine image provides the Rust toolchain.
mk_require_cargo() {
    if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    command -v cargo >/dev/null 2>&1 ||
        mk_die "\`cargo\` not found" "install the Rust toolchain (rustup) and make sure cargo is on PATH"
}

# Python 3 (with its `email` package, part of the standard library): the
# corpus tests compare mailkeep's reading of mail with it.
mk_ensure_python3() {
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import email.policy' >/dev/null 2>&1; then
        mk_apt_install python3
    fi
    python3 -c 'import email.policy' ||
        mk_die "\`python3\` cannot import its \`email\` package" \
            "reinstall it: apt-get install --reinstall -y python3"
    python3 --version >&2
}

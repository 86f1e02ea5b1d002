#!/usr/bin/env bash
# Times mailkeep against the limits of the protocol and against mbsync and
# OfflineIMAP, side by side on one throwaway local Dovecot (mail_fsync = never),
# with a generated mailbox whose sizes follow real mail. Prints a table and the
# targets of the store rewrite (MET / MISSED); docs/benchmarks.md explains every
# figure.
#
# Usage: benches/compare.sh [--small] [--messages N] [--runs N] [--json OUT]
#                           [--big-mib N] [--skip LIST] [--seed N] [--text-only] [--keep]
#   --small        10,000 messages instead of 100,000
#   --messages N   any other count
#   --runs N       runs of each measurement; the table shows medians (default 3)
#   --json OUT     also write every measurement and the summary to OUT
#   --big-mib N    size of the one big message of the memory run (default 200; 0: skip)
#   --skip LIST    comma-separated parts to leave out: mbsync, offlineimap,
#                  restore, restore30, capped, big
#   --seed N       seed of the generated mail (default 1)
#   --text-only    generate no attachments (the same messages otherwise): for
#                  counts whose full mailbox would not fit the disk (1,000,000)
#   --keep         leave the work dir (server, stores, logs) in place
# Environment:
#   MAILKEEP_BIN      the mailkeep binary to measure (default: cargo build --release)
#   CARGO_TARGET_DIR  where cargo builds (default: target/)
#   TMPDIR            where the work dir goes (needs ~3× the mailbox's size free)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../scripts/lib/common.sh
. scripts/lib/common.sh
# shellcheck source=../scripts/lib/dovecot.sh
. scripts/lib/dovecot.sh

messages=100000
runs=3
json=""
big_mib=200
skip=","
seed=1
gen_profile=()
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
    --small) messages=10000 ;;
    --messages) messages=${2:?}; shift ;;
    --runs) runs=${2:?}; shift ;;
    --json) json=${2:?}; shift ;;
    --big-mib) big_mib=${2:?}; shift ;;
    --skip) skip=",${2:?},"; shift ;;
    --seed) seed=${2:?}; shift ;;
    --text-only) gen_profile=(--text-only) ;;
    --keep) keep=1 ;;
    -h | --help)
        sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) mk_die "unknown argument \`$1\`" "see \`benches/compare.sh --help\`" ;;
    esac
    shift
done
[[ "$messages" =~ ^[0-9]+$ ]] && [ "$messages" -ge 1000 ] ||
    mk_die "\`--messages $messages\`: give at least 1000" ""
[[ "$runs" =~ ^[0-9]+$ ]] && [ "$runs" -ge 1 ] || mk_die "\`--runs $runs\` is not a count" ""
skipped() { [[ "$skip" == *",$1,"* ]]; }
if [ -n "$json" ]; then
    case "$json" in /*) ;; *) json="$PWD/$json" ;; esac
fi

# --- tools ----------------------------------------------------------------------------
mk_step "checking tools"
mk_ensure_dovecot
need=()
[ -x /usr/bin/time ] || need+=(time)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
command -v sqlite3_analyzer >/dev/null 2>&1 || need+=(sqlite3-tools)
skipped mbsync || command -v mbsync >/dev/null 2>&1 || need+=(isync)
skipped offlineimap || command -v offlineimap >/dev/null 2>&1 || need+=(offlineimap3)
[ ${#need[@]} -eq 0 ] || mk_apt_install "${need[@]}"

mk_require_cargo
target=${CARGO_TARGET_DIR:-$PWD/target}
mk_step "cargo build --release (the benchmark's programs)"
cargo build --release --example bench_gen --example raw_imap --example delay_proxy --example bench_report ||
    mk_die "cannot build the benchmark's programs" "see the compiler errors above"
ex="$target/release/examples"
bin=${MAILKEEP_BIN:-}
if [ -z "$bin" ]; then
    mk_step "cargo build --release --bin mailkeep"
    cargo build --release --bin mailkeep || mk_die "cannot build mailkeep" "see the compiler errors above"
    bin="$target/release/mailkeep"
fi
[ -x "$bin" ] || mk_die "mailkeep binary \`$bin\` not found" "unset MAILKEEP_BIN to build it"

# --- work dir and server --------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/mailkeep-bench.XXXXXX")
chmod 755 "$work"
server="$work/dovecot"
mkdir -p "$server"
proxy_pid=""
capped_pid=""
cleanup() {
    [ -z "$proxy_pid" ] || kill "$proxy_pid" 2>/dev/null || true
    [ -z "$capped_pid" ] || kill "$capped_pid" 2>/dev/null || true
    mk_dovecot_stop "$server"
    if [ "$keep" -eq 1 ]; then
        echo "kept: $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

password=bench-secret-$$
export MK_BENCH_PASSWORD="$password"
export NO_COLOR=1
mk_dovecot_setup "$server" bench "$password"
# Restore targets, one fresh account per writer and run; `big` holds the big message.
users=(big rbig)
for r in $(seq 1 "$runs"); do
    users+=("rk$r" "rm$r" "rs$r" "dk$r" "dm$r" "ds$r")
done
for u in "${users[@]}"; do
    printf '%s:{PLAIN}%s\n' "$u" "$password" >>"$server/passwd"
done

results="$work/results.tsv"
: >"$results"
fact() { printf 'f\t%s\t%s\n' "$1" "$2" >>"$results"; }

mk_step "generating $messages messages into $server/mail/bench/Maildir"
"$ex/bench_gen" --maildir "$server/mail/bench/Maildir" --messages "$messages" --seed "$seed" \
    "${gen_profile[@]}" --manifest "$work/manifest.tsv" >"$work/gen.txt" || mk_die "the generator failed"
cat "$work/gen.txt" >&2
while IFS='=' read -r k v; do fact "gen_$k" "$v"; done <"$work/gen.txt"
if [ "$big_mib" -gt 0 ] && ! skipped big; then
    "$ex/bench_gen" --maildir "$server/mail/big/Maildir" --big-mib "$big_mib" --seed "$seed" >"$work/gen-big.txt" ||
        mk_die "the generator failed on the big message"
    while IFS='=' read -r k v; do fact "big_$k" "$v"; done <"$work/gen-big.txt"
fi
if [ "$(id -u)" -eq 0 ]; then
    chown -R dovecot:dovecot "$server/mail"
fi

mk_step "starting Dovecot (mail_fsync = never)"
export MK_DOVECOT_EXTRA_CONFIG="mail_fsync = never"
mk_dovecot_start "$server"
port=$MK_IMAPS_PORT
echo "dovecot: imaps on 127.0.0.1:$port" >&2

# --- measuring ------------------------------------------------------------------------
# measure NAME RUN MESSAGES BYTES CMD…: runs CMD under /usr/bin/time -v and records
# its wall time (ns clock around it), peak RSS, CPU time (user + system), the 1-minute
# load average after it and the counts. MESSAGES or BYTES `-`:
# take them from the `messages=` / `bytes=` lines CMD prints.
measure() {
    local name=$1 run=$2 msgs=$3 bytes=$4
    shift 4
    local tf="$work/time.out" out="$work/cmd.out" err="$work/cmd.err" t0 t1 rss cpu
    # The shell functions below, spelled out: /usr/bin/time runs programs only.
    case "$1" in
    mk) set -- "$bin" --config "$config" --store "$2" "${@:3}" ;;
    raw) set -- "$ex/raw_imap" "$2" --port "${RAW_PORT:-$port}" --user "$3" \
        --password-env MK_BENCH_PASSWORD --ca "$server/ca.pem" "${@:4}" ;;
    esac
    t0=$(date +%s%N)
    if ! /usr/bin/time -v -o "$tf" "$@" >"$out" 2>"$err"; then
        echo "--- stdout ---" >&2
        tail -20 "$out" >&2
        echo "--- stderr ---" >&2
        tail -40 "$err" >&2
        mk_die "\`$name\` (run $run) failed: $*" "see its output above; run with --keep to look at $work"
    fi
    t1=$(date +%s%N)
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$tf")
    cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%d", s * 1000000 }' "$tf")
    [ "$msgs" != "-" ] || msgs=$(sed -n 's/^messages=//p' "$out" | tail -1)
    [ "$bytes" != "-" ] || bytes=$(sed -n 's/^bytes=//p' "$out" | tail -1)
    printf 'm\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$run" "$(((t1 - t0) / 1000))" "$rss" "${msgs:-0}" "${bytes:-0}" \
        "$cpu" "$(cut -d' ' -f1 /proc/loadavg)" >>"$results"
    printf '  %-28s run %s: %8.3f s  %7d KiB  cpu %6.2f s  load %s\n' "$name" "$run" "$(echo "($t1 - $t0) / 1000000000" | bc -l)" \
        "$rss" "$(echo "$cpu / 1000000" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)" >&2
}
command -v bc >/dev/null 2>&1 || mk_apt_install bc

raw() { "$ex/raw_imap" "$1" --port "${RAW_PORT:-$port}" --user "$2" --password-env MK_BENCH_PASSWORD --ca "$server/ca.pem" "${@:3}"; }

# Server counts, from the Maildir files (what the raw writers send).
maildir_count() { find "$server/mail/$1/Maildir" -type f \( -path '*/cur/*' -o -path '*/new/*' \) | wc -l; }
maildir_bytes() {
    find "$server/mail/$1/Maildir" -type f \( -path '*/cur/*' -o -path '*/new/*' \) -printf '%s\n' |
        awk '{ s += $1 } END { printf "%.0f\n", s }'
}
du_bytes() { du -s -B1 "$@" 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
du_apparent() { du -s -b "$@" 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }

config="$work/config.toml"
add_account() { # NAME USER PORT
    cat >>"$config" <<EOF
[accounts.$1]
host = "localhost"
port = $3
tls = "implicit"
username = "$2"
password_env = "MK_BENCH_PASSWORD"
ca_file = "$server/ca.pem"

EOF
}
: >"$config"
chmod 600 "$config"
add_account bench bench "$port"
add_account big big "$port"
add_account rbig rbig "$port"
for r in $(seq 1 "$runs"); do add_account "rk$r" "rk$r" "$port"; done
mk() { "$bin" --config "$config" --store "$1" "${@:2}"; }

mbsync_config() { # DIR USER
    cat >"$1.mbsyncrc" <<EOF
IMAPAccount bench
Host localhost
Port $port
User $2
PassCmd "printenv MK_BENCH_PASSWORD"
SSLType IMAPS
CertificateFile $server/ca.pem

IMAPStore remote
Account bench

MaildirStore local
Path $1/
Inbox $1/INBOX
SubFolders Verbatim

Channel bench
Far :remote:
Near :local:
Patterns *
Create Near
Sync Pull
Expunge None
SyncState *
EOF
    mkdir -p "$1"
}
offlineimap_config() { # DIR USER
    printf '%s' "$password" >"$1.pass"
    chmod 600 "$1.pass"
    cat >"$1.offlineimaprc" <<EOF
[general]
accounts = bench
metadata = $1/.offlineimap
ui = quiet

[Account bench]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = $1/mail

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = $port
ssl = yes
sslcacertfile = $server/ca.pem
remoteuser = $2
remotepassfile = $1.pass
readonly = True
EOF
    mkdir -p "$1/mail"
}

printf 'bench\n' >"$work/users"
total=$(maildir_count bench)
total_bytes=$(maildir_bytes bench)

mk_step "warming the server (one untimed raw fetch: Dovecot builds its indexes)"
raw fetch bench >"$work/warm.txt" || mk_die "the warm-up fetch failed" "see $server/dovecot.log"
cat "$work/warm.txt" >&2
grep -q "^messages=$total\$" "$work/warm.txt" ||
    mk_die "the server sent $(sed -n 's/^messages=//p' "$work/warm.txt") messages, $total were seeded" "see $server/dovecot.log"

# The folders of the 30 ms restore: about 1 % of the mail (at least 100 messages), in
# ASCII-named folders other than INBOX, largest first while they fit.
# Each folder at most a quarter of that, so that there are several to restore at once.
subset_target=$((messages / 100 > 100 ? messages / 100 : 100))
sort -t$'\t' -k2,2nr "$work/manifest.tsv" | awk -F'\t' -v t="$subset_target" '
    $1 ~ /^[A-Za-z0-9\/ -]+$/ && $1 != "INBOX" && $2 > 0 && $2 <= t / 4 && n + $2 <= t { print $1; n += $2 }' >"$work/subset.txt"
[ -s "$work/subset.txt" ] || mk_die "no folder fits the 30 ms restore subset" ""

queries=(
    "word|quarterly"
    "prefix|reconc"
    "japanese|会議"
    "field|from:tanaka"
)
search_reps=5

for r in $(seq 1 "$runs"); do
    mk_step "run $r of $runs ($(maildir_count bench) messages on the server)"
    total=$(maildir_count bench)
    total_bytes=$(maildir_bytes bench)

    measure raw_fetch "$r" - - raw fetch bench
    for i in 1 2 3 4 5; do
        measure raw_list_status "$r" 0 0 raw list-status bench
    done

    if ! skipped mbsync; then
        d="$work/mbsync.$r"
        mbsync_config "$d" bench
        measure mbsync "$r" "$total" "$total_bytes" mbsync -q -c "$d.mbsyncrc" -a
        sync
        measure mbsync_nochange "$r" 0 0 mbsync -q -c "$d.mbsyncrc" -a
        got=$(find "$d" -type f \( -path '*/cur/*' -o -path '*/new/*' \) | wc -l)
        [ "$got" -eq "$total" ] || mk_die "mbsync wrote $got messages, the server has $total" "see $d"
        if [ "$r" -eq 1 ]; then
            fact size_mbsync "$(du_bytes "$d")"
            fact size_mbsync_apparent "$(du_apparent "$d")"
        fi
        rm -rf "$d"
    fi

    if ! skipped offlineimap; then
        d="$work/offlineimap.$r"
        offlineimap_config "$d" bench
        measure offlineimap "$r" "$total" "$total_bytes" offlineimap -c "$d.offlineimaprc" -o -u quiet
        sync
        measure offlineimap_nochange "$r" 0 0 offlineimap -c "$d.offlineimaprc" -o -u quiet
        got=$(find "$d/mail" -type f \( -path '*/cur/*' -o -path '*/new/*' \) | wc -l)
        [ "$got" -eq "$total" ] || mk_die "OfflineIMAP wrote $got messages, the server has $total" "see $d"
        if [ "$r" -eq 1 ]; then
            fact size_offlineimap "$(du_bytes "$d")"
            fact size_offlineimap_apparent "$(du_apparent "$d")"
        fi
        rm -rf "$d"
    fi

    store="$work/store.$r"
    measure mk_backup_first "$r" "$total" "$total_bytes" mk "$store" backup bench
    # A nightly re-run finds the store at rest: what the first backup left
    # for the disk to write is written first (else the re-run's few fsyncs
    # wait behind it), and the re-run is timed three times.
    sync
    for i in 1 2 3; do
        measure mk_backup_nochange "$r" 0 0 mk "$store" backup bench
    done
    if [ "$r" -eq 1 ]; then
        fact size_mk_total "$(du_bytes "$store")"
        fact size_mk_packs "$(du_bytes "$store/packs")"
        fact size_mk_index "$(du_bytes "$store"/index.sqlite*)"
        # The search index is a file of its own since format 2 (search.sqlite);
        # before, tables search_* inside index.sqlite.
        fact size_mk_search "$(du_bytes "$store"/search.sqlite* 2>/dev/null || echo 0)"
        fact messages_at_sizes "$total"
        fact bytes_at_sizes "$total_bytes"
        sqlite3 -readonly "$store/index.sqlite" \
            "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC" |
            while IFS='|' read -r t b; do printf 't\t%s\t%s\n' "$t" "$b" >>"$results"; done
        sqlite3_analyzer "$store/index.sqlite" >"$work/sqlite3_analyzer.txt" 2>&1 || true
        [ -z "$json" ] || cp "$work/sqlite3_analyzer.txt" "${json%.json}.sqlite3_analyzer.txt"
    fi
    measure mk_reindex "$r" "$total" "$total_bytes" mk "$store" reindex

    # 1 % new mail (appended over IMAP, as delivery would) and 10 % flag changes.
    new=$((messages / 100))
    stage="$work/new.$r"
    "$ex/bench_gen" --maildir "$stage" --first $((messages + (r - 1) * new)) --messages "$new" --seed "$seed" "${gen_profile[@]}" >/dev/null
    raw append bench --source "$stage" --mode multi >/dev/null || mk_die "appending the new mail failed"
    raw flags bench --every 10 --offset "$r" >"$work/flags.txt" || mk_die "changing flags failed"
    rm -rf "$stage"
    changed=$(sed -n 's/^messages=//p' "$work/flags.txt")
    total=$(maildir_count bench)
    total_bytes=$(maildir_bytes bench)
    measure mk_backup_incremental "$r" "$((new + changed))" 0 mk "$store" backup bench

    for q in "${queries[@]}"; do
        label=${q%%|*}
        query=${q#*|}
        for _ in $(seq 1 "$search_reps"); do
            measure "search_$label" "$r" 0 0 mk "$store" search "$query"
        done
        fact "query_$label" "$query"
        fact "hits_$label" "$(wc -l <"$work/cmd.out")"
        fact "matches_$label" "$(mk "$store" search --limit 1000000000 "$query" | wc -l)"
    done

    # The first backup again, each connection capped as providers cap one
    # (10 MB/s each way, 5 ms each way), into a store of its own.
    capped_mb=10
    if ! skipped capped; then
        if [ -z "$capped_pid" ]; then
            "$ex/delay_proxy" --upstream "127.0.0.1:$port" --delay-ms 5 --rate-mb "$capped_mb" >"$work/capped.port" &
            capped_pid=$!
            for _ in $(seq 1 100); do
                [ -s "$work/capped.port" ] && break
                kill -0 "$capped_pid" 2>/dev/null || mk_die "the capped proxy did not start"
                sleep 0.1
            done
            capped_port=$(head -1 "$work/capped.port")
            [ -n "$capped_port" ] || mk_die "the capped proxy did not say its port"
            echo "capped proxy: 127.0.0.1:$capped_port → $port, $capped_mb MB/s a connection" >&2
            fact capped_rate_mb "$capped_mb"
            add_account capped bench "$capped_port"
        fi
        measure mk_backup_capped "$r" "$total" "$total_bytes" mk "$work/store.capped" backup capped
        rm -rf "$work/store.capped"
    fi

    if ! skipped restore; then
        measure restore_mk "$r" "$total" "$total_bytes" mk "$store" restore "rk$r" --from bench
        got=$(maildir_count "rk$r")
        [ "$got" -eq "$total" ] || mk_die "mailkeep restored $got messages, the store has $total" ""
        rm -rf "$server/mail/rk$r"
        measure restore_raw_multi "$r" - - raw append "rm$r" --source "$server/mail/bench/Maildir" --mode multi --batch 200
        rm -rf "$server/mail/rm$r"
        measure restore_raw_single "$r" - - raw append "rs$r" --source "$server/mail/bench/Maildir" --mode single
        rm -rf "$server/mail/rs$r"
    fi

    if ! skipped restore30; then
        if [ -z "$proxy_pid" ]; then
            coproc PROXY { exec "$ex/delay_proxy" --upstream "127.0.0.1:$port" --delay-ms 15; }
            proxy_pid=$PROXY_PID
            read -r proxy_port <&"${PROXY[0]}" || mk_die "the delay proxy did not start"
            echo "delay proxy: 127.0.0.1:$proxy_port → $port, 15 ms each way" >&2
            raw_rtt_t0=$(date +%s%N)
            RAW_PORT=$proxy_port raw list-status bench >/dev/null
            raw_rtt_t1=$(date +%s%N)
            fact proxy_list_status_ms $(((raw_rtt_t1 - raw_rtt_t0) / 1000000))
        fi
        if ! grep -q "^\[accounts.dk$r\]" "$config"; then add_account "dk$r" "dk$r" "$proxy_port"; fi
        sub_n=0
        sub_b=0
        folder_args=()
        while IFS= read -r f; do
            folder_args+=(--folder "$f")
            dir="$server/mail/bench/Maildir/.${f//\//.}"
            sub_n=$((sub_n + $(find "$dir/cur" "$dir/new" -type f | wc -l)))
            sub_b=$((sub_b + $(find "$dir/cur" "$dir/new" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f\n", s }')))
        done <"$work/subset.txt"
        measure restore30_mk "$r" "$sub_n" "$sub_b" mk "$store" restore "dk$r" --from bench "${folder_args[@]}"
        got=$(maildir_count "dk$r")
        [ "$got" -eq "$sub_n" ] || mk_die "mailkeep restored $got messages through the proxy, expected $sub_n" ""
        rm -rf "$server/mail/dk$r"
        RAW_PORT=$proxy_port measure restore30_raw_multi "$r" - - raw append "dm$r" --source "$server/mail/bench/Maildir" \
            --mode multi --batch 200 --folders "$work/subset.txt"
        rm -rf "$server/mail/dm$r"
        RAW_PORT=$proxy_port measure restore30_raw_single "$r" - - raw append "ds$r" --source "$server/mail/bench/Maildir" \
            --mode single --folders "$work/subset.txt"
        rm -rf "$server/mail/ds$r"
    fi
    [ "$r" -eq "$runs" ] || rm -rf "$store"
done
fact subset_folders "$(wc -l <"$work/subset.txt")"

if [ "$big_mib" -gt 0 ] && ! skipped big; then
    mk_step "one message of $big_mib MiB (memory)"
    bs="$work/store.big"
    measure big_raw_fetch 1 - - raw fetch big
    measure big_mk_backup 1 1 "$(maildir_bytes big)" mk "$bs" backup big
    measure big_mk_restore 1 1 "$(maildir_bytes big)" mk "$bs" restore rbig --from big
    if ! skipped mbsync; then
        d="$work/mbsync.big"
        mbsync_config "$d" big
        measure big_mbsync 1 1 "$(maildir_bytes big)" mbsync -q -c "$d.mbsyncrc" -a
        rm -rf "$d"
    fi
    rm -rf "$bs" "$server/mail/rbig"
fi

# --- report ----------------------------------------------------------------------------
fact runs "$runs"
fact messages_requested "$messages"
fact date "$(date -u '+%Y-%m-%d %H:%M UTC')"
fact machine "$(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(free -g | awk '/Mem:/ { print $2 }') GiB"
fact kernel "$(uname -sr)"
fact dovecot "$(dovecot --version)"
fact mailkeep "$("$bin" --version 2>/dev/null | head -1) ($(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ', modified'))"
skipped mbsync || fact mbsync "$(mbsync --version | head -1)"
skipped offlineimap || fact offlineimap "offlineimap $(offlineimap --version 2>/dev/null | tail -1)"
measure harness_true 1 0 0 true
cp "$results" "$work/results.final.tsv"
"$ex/bench_report" "$results" ${json:+--json "$json"} || mk_die "the report failed" "the raw measurements are in $results (use --keep)"

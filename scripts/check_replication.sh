#!/usr/bin/env bash
# Did every node end with the same log? The original authors' check: compare
# the last `log = [...]` line of each node's newest log file.
#
# usage: scripts/check_replication.sh [LOGDIR] [names...]
#   LOGDIR  default: logs. Files are LOGDIR/<name>/<datetime>.<name>.log (the
#           original's and the Rust nodes' layout) or LOGDIR/<datetime>.<name>.log;
#           .log.gz files are read too.
#   names   default: every <name> found in LOGDIR.
# Exit 0 when all last log lines are equal; 1 naming the nodes that differ
# (from the line most nodes have); 2 for a missing log file or bad usage.
set -euo pipefail

logdir=${1:-logs}
[[ $# -gt 0 ]] && shift
if [[ ! -d $logdir ]]; then
    echo "check_replication: no log directory '$logdir'" >&2
    exit 2
fi

names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
    mapfile -t names < <(
        {
            find "$logdir" -mindepth 1 -maxdepth 1 -type d -printf '%f\n'
            find "$logdir" -mindepth 1 -maxdepth 1 -type f \( -name '*.log' -o -name '*.log.gz' \) -printf '%f\n' |
                sed -E 's/\.log(\.gz)?$//; s/.*\.//'
        } | sort -u
    )
fi
if [[ ${#names[@]} -eq 0 ]]; then
    echo "check_replication: no node logs in '$logdir'" >&2
    exit 2
fi

# The newest log file of a node: file names start with the date and time.
newest() {
    local name=$1
    {
        [[ -d $logdir/$name ]] && find "$logdir/$name" -maxdepth 1 -type f \
            \( -name "*.$name.log" -o -name "*.$name.log.gz" \) -print
        find "$logdir" -maxdepth 1 -type f \( -name "*.$name.log" -o -name "*.$name.log.gz" \) -print
    } | awk -F/ '{ print $NF "\t" $0 }' | sort | tail -n 1 | cut -f2-
}

last_line() {
    local file=$1
    if [[ $file == *.gz ]]; then
        gzip -dc -- "$file" | grep '^log = ' | tail -n 1 || true
    else
        grep '^log = ' -- "$file" | tail -n 1 || true
    fi
}

declare -A line_of
missing=()
for name in "${names[@]}"; do
    file=$(newest "$name")
    if [[ -z $file ]]; then
        missing+=("$name")
        continue
    fi
    line=$(last_line "$file")
    if [[ -z $line ]]; then
        echo "check_replication: $name: no 'log = ' line in $file" >&2
        missing+=("$name")
        continue
    fi
    line_of[$name]=$line
    entries=$({ grep -o 'Raft\.Entry(' <<<"$line" || true; } | wc -l)
    last=$({ grep -o 'Raft\.Entry([^)]*)' <<<"$line" || true; } | tail -n 1)
    printf '%-10s %4d entries, last %s  (%s)\n' "$name" "$entries" "${last:-none}" "$file"
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "check_replication: no log line for: ${missing[*]}" >&2
    exit 2
fi

# The line most nodes have (the first node's on a tie) is the reference.
reference=$(for n in "${names[@]}"; do printf '%s\n' "${line_of[$n]}"; done |
    sort | uniq -c | sort -rn -s -k1,1 | awk 'NR == 1 { print $1 }')
best=""
for n in "${names[@]}"; do
    count=0
    for m in "${names[@]}"; do
        [[ ${line_of[$m]} == "${line_of[$n]}" ]] && count=$((count + 1))
    done
    if [[ $count -eq $reference ]]; then
        best=${line_of[$n]}
        break
    fi
done

differ=()
for n in "${names[@]}"; do
    [[ ${line_of[$n]} == "$best" ]] || differ+=("$n")
done
if [[ ${#differ[@]} -eq 0 ]]; then
    echo "replication OK: the last log line of ${names[*]} is the same"
    exit 0
fi
echo "replication FAILED: ${differ[*]} differ from the log most nodes have" >&2
exit 1

#!/usr/bin/env bash
# The steps of the pgdrill GitHub Action (ci/action/action.yml), one subcommand each, so that
# they run, and are tested, outside GitHub too (harness/tests/drills/ci_files.rs):
#
#   prepare   check the inputs; the install and image cache keys; pgdrill's folder on PATH
#   install   cargo install pgdrill from this checkout (the action's own ref)
#   images    the PostgreSQL image of each major: loaded from the cache, or built and saved
#   run       pgdrill run / gate / report merge; its exit code is kept, not returned
#   report    this run's drills: merged junit.xml and summary.md, the job summary, the outputs
#   finish    fail, last, when a drill failed or pgdrill could not run
#   argv      print the arguments `run` would give pgdrill, one a line (for the tests)
#
# Inputs come from the environment (PGDRILL_ACTION_*, set by action.yml from the action's
# inputs), results go to $GITHUB_OUTPUT, $GITHUB_PATH and $GITHUB_STEP_SUMMARY, and the files
# the steps pass on to each other to PGDRILL_ACTION_WORK (a folder `prepare` makes). Nothing here
# prints the environment: the credentials scenarios read from it stay where the caller put them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

die() {
    echo "::error::pgdrill action: $*"
    exit 1
}

output() {
    printf '%s=%s\n' "$1" "$2" >> "${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set}"
}

# A value for a workflow command's message (`::error::MESSAGE`), and for its properties.
escape_data() {
    local text="${1//'%'/%25}"
    text="${text//$'\r'/%0D}"
    printf '%s' "${text//$'\n'/%0A}"
}
escape_property() {
    local text
    text="$(escape_data "$1")"
    text="${text//:/%3A}"
    printf '%s' "${text//,/%2C}"
}

# Words of an input (spaces, commas where `commas` is given, or new lines between them), without
# glob expansion: one per line.
words() {
    local text="${1//$'\n'/ }"
    [ "${2:-}" = commas ] && text="${text//,/ }"
    local -a list
    read -r -a list <<< "$text" || true
    [ "${#list[@]}" -eq 0 ] || printf '%s\n' "${list[@]}"
}

work() {
    local dir="${PGDRILL_ACTION_WORK:?PGDRILL_ACTION_WORK is not set (the prepare step makes it)}"
    [ -d "$dir" ] || die "the work folder $dir is missing"
    printf '%s' "$dir"
}

step_prepare() {
    local command="${PGDRILL_ACTION_COMMAND:-run}"
    case "$command" in
        run | gate | merge) ;;
        *) die "command: \`$command\` is none of run, gate, merge" ;;
    esac
    local shard="${PGDRILL_ACTION_SHARD:-}"
    if [ -n "$shard" ] && [ "$command" = merge ]; then
        die "shard: merge reads the reports of every shard; shard is for run and gate"
    fi
    if [ -n "$shard" ] && ! [[ "$shard" =~ ^[1-9][0-9]*/[1-9][0-9]*$ ]]; then
        die "shard: \`$shard\` is not K/N (for example 1/2)"
    fi
    [ -n "${PGDRILL_ACTION_REPORTS:-}" ] || die "reports: the reports folder is empty"
    local majors
    majors="$(words "${PGDRILL_ACTION_PG_MAJORS:-17}" commas | tr '\n' ' ')"
    majors="${majors% }"
    [ -n "$majors" ] || die "pg-majors: no PostgreSQL major given"
    local major
    for major in $majors; do
        [[ "$major" =~ ^[0-9]+$ ]] || die "pg-majors: \`$major\` is not a PostgreSQL major (such as 17)"
    done

    # pgdrill's build depends on the workspace's manifests and lock file and the harness's
    # sources: their digest names the build, so a new ref builds once and then comes from the
    # cache.
    local source
    source="$(cd "$repo" && find Cargo.toml Cargo.lock harness/Cargo.toml harness/src fixtures/app/Cargo.toml \
        -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-24)"
    local image
    image="$(cd "$repo/ci/image" && sha256sum TAG build Dockerfile pg_hba.conf | sha256sum | cut -c1-16)"
    local temp="${RUNNER_TEMP:-${TMPDIR:-/tmp}}"
    local work
    work="$(mktemp -d "$temp/pgdrill-action.XXXXXX")"
    local install="$temp/pgdrill-install"
    output source-hash "$source"
    output install-dir "$install"
    # The image's packages come from Debian's archive: a month in the key takes its point
    # releases once a month.
    output image-key "$image-${majors// /-}-$(date -u +%Y-%m)"
    output image-dir "$temp/pgdrill-images"
    output work "$work"
    echo "$install/bin" >> "${GITHUB_PATH:?GITHUB_PATH is not set}"
    echo "pgdrill from $repo (sources $source), PostgreSQL $majors"
}

step_install() {
    local root="${PGDRILL_ACTION_INSTALL_DIR:?PGDRILL_ACTION_INSTALL_DIR is not set}"
    command -v cargo >/dev/null 2>&1 || die "cargo is not installed: pgdrill is built from source (https://rustup.rs)"
    # The stable toolchain, whatever rust-toolchain file the caller's repository holds. One
    # already installed is used as it is: `rustup toolchain install` would update it, under the
    # feet of whatever else builds on a self-hosted runner (GitHub's runners carry a recent one).
    local -a toolchain=()
    if command -v rustup >/dev/null 2>&1; then
        if ! rustup toolchain list | grep -q '^stable-'; then
            rustup toolchain install stable --profile minimal --no-self-update
        fi
        toolchain=(+stable)
    fi
    CARGO_TARGET_DIR="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/pgdrill-target" \
        cargo "${toolchain[@]}" install --locked --force --path "$repo/harness" --root "$root"
    "$root/bin/pgdrill" --version
}

step_images() {
    local cache="${PGDRILL_ACTION_IMAGE_DIR:-}"
    local tag
    tag="$(tr -d '[:space:]' < "$repo/ci/image/TAG")"
    local major
    for major in $(words "${PGDRILL_ACTION_PG_MAJORS:-17}" commas); do
        # As ci/image/build names it: TAG with this major.
        local image="${tag%%:*}:${major}-${tag#*-}"
        if docker image inspect "$image" >/dev/null 2>&1; then
            echo "image $image is here"
            continue
        fi
        if [ -n "$cache" ] && [ -f "$cache/$major.tar" ]; then
            echo "loading $image from the cache"
            docker load --input "$cache/$major.tar"
            docker image inspect "$image" >/dev/null 2>&1 && continue
            echo "::warning::the cached image of PostgreSQL $major is not $image: building it"
        fi
        PGDRILL_PG_MAJOR="$major" bash "$repo/ci/image/build"
        if [ -n "$cache" ]; then
            mkdir -p "$cache"
            docker save --output "$cache/$major.tar" "$image"
        fi
    done
}

# The run's command line, one word a line: pgdrill's arguments.
arguments() {
    local command="$1" reports="$2" merged="$3"
    if [ "$command" = merge ]; then
        printf '%s\n' report merge "$reports" --output "$merged"
        return
    fi
    printf '%s\n' "$command"
    words "${PGDRILL_ACTION_SCENARIOS:-scenarios}"
    printf '%s\n' --reports "$reports"
    local tags
    tags="$(words "${PGDRILL_ACTION_TAGS:-}" commas | paste -sd, -)"
    [ -z "$tags" ] || printf '%s\n' --tag "$tags"
    [ -z "${PGDRILL_ACTION_SHARD:-}" ] || printf '%s\n' --shard "$PGDRILL_ACTION_SHARD"
    words "${PGDRILL_ACTION_ARGS:-}"
}

step_run() {
    local work command reports
    work="$(work)"
    command="${PGDRILL_ACTION_COMMAND:-run}"
    reports="${PGDRILL_ACTION_REPORTS:?PGDRILL_ACTION_REPORTS is not set}"
    if [ "$command" = merge ]; then
        [ -d "$reports" ] || die "reports: \`$reports\` is not a folder (merge reads the drills' reports there)"
    else
        mkdir -p "$reports"
    fi
    reports="$(cd "$reports" && pwd)"
    rm -rf "$work/merged"
    printf '%s\n' "$reports" > "$work/reports"
    printf '%s\n' "$command" > "$work/command"
    local -a argv
    mapfile -t argv < <(arguments "$command" "$reports" "$work/merged")
    # The drills written after this file are this run's: a reports folder may hold older ones.
    touch "$work/started"
    echo "pgdrill ${argv[*]}"
    # What a restored database holds reaches the log (the checks' actual values): it must not be
    # read as workflow commands.
    local token
    token="pgdrill-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    echo "::stop-commands::$token"
    local code=0
    pgdrill "${argv[@]}" || code=$?
    echo "::$token::"
    printf '%s\n' "$code" > "$work/exit-code"
    output exit-code "$code"
}

# Appends a file to the job summary unless that passes GitHub's limit of 1 MiB a step.
summary_add() {
    local file="$1" label="$2" summary="${GITHUB_STEP_SUMMARY:?GITHUB_STEP_SUMMARY is not set}"
    local have size
    have="$(wc -c < "$summary")"
    size="$(wc -c < "$file")"
    if [ $((have + size)) -gt 1000000 ]; then
        printf '\n%s is left out (the job summary holds 1 MiB): it is in the reports artifact.\n' "$label" >> "$summary"
        return
    fi
    cat "$file" >> "$summary"
}

step_report() {
    command -v jq >/dev/null 2>&1 || die "jq is not installed (the outputs are read from drill.json with it)"
    local work command reports code
    work="$(work)"
    command="$(cat "$work/command")"
    reports="$(cat "$work/reports")"
    code="$(cat "$work/exit-code")"
    local summary="${GITHUB_STEP_SUMMARY:?GITHUB_STEP_SUMMARY is not set}"
    touch "$summary"

    local -a records=()
    if [ "$command" = merge ]; then
        mapfile -d '' records < <(find "$reports" -name drill.json -type f -print0 | LC_ALL=C sort -z)
    else
        mapfile -d '' records < <(find "$reports" -name drill.json -type f -newer "$work/started" -print0 | LC_ALL=C sort -z)
    fi
    local -a dirs=()
    local record
    for record in "${records[@]}"; do
        dirs+=("$(dirname "$record")")
    done

    local verify_failed=0
    if [ "${#dirs[@]}" -gt 0 ] && [ "$command" != merge ]; then
        # One junit.xml (a suite per drill) and a summary.md over this run's drills; merge
        # wrote them already. It exits 1 when a drill failed: that is the verdict's to say.
        pgdrill report merge "${dirs[@]}" --output "$work/merged" > /dev/null || [ $? -eq 1 ] ||
            echo "::warning::pgdrill report merge could not merge this run's reports"
    fi
    if [ "$command" = merge ]; then
        # Reports that travelled as artifacts: each drill's files against its manifest.
        local dir
        for dir in "${dirs[@]}"; do
            pgdrill report verify "$dir" || verify_failed=1
        done
    fi

    local drills=0 passed=0 recovery_ms="" checks_failed=0
    if [ "${#records[@]}" -gt 0 ]; then
        local numbers
        numbers="$(jq -rs 'length,
                (map(select(.verdict == "pass")) | length),
                (map(.recovery_ms | numbers) | max // ""),
                (map(.checks[]? | select(.verdict == "fail" or .verdict == "error")) | length)' \
            "${records[@]}")" || die "a drill.json under $reports is not JSON"
        { read -r drills; read -r passed; read -r recovery_ms; read -r checks_failed; } <<< "$numbers"
    fi
    local seconds=""
    [ -z "$recovery_ms" ] || seconds="$(jq -n --argjson ms "$recovery_ms" '$ms / 1000')"
    local verdict=passed
    if [ "$code" != 0 ] || [ "$passed" != "$drills" ] || [ "$verify_failed" = 1 ]; then
        verdict=failed
    fi

    # The job summary: the merged table when there are several drills, then every report.md.
    if [ "$drills" = 0 ]; then
        if [ "$code" = 0 ]; then
            printf '## pgdrill: no drill\n\nNo scenario was this run'"'"'s to drill (an empty shard).\n' >> "$summary"
        else
            printf '## pgdrill: FAIL\n\npgdrill exited %s before any drill wrote its reports: see the log.\n' "$code" >> "$summary"
        fi
    else
        if [ "$drills" -gt 1 ] && [ -f "$work/merged/summary.md" ]; then
            summary_add "$work/merged/summary.md" "summary.md"
        fi
        local dir first=1
        for dir in "${dirs[@]}"; do
            [ -f "$dir/report.md" ] || continue
            if [ "$first" = 0 ] || [ "$drills" -gt 1 ]; then
                printf '\n---\n\n' >> "$summary"
            fi
            first=0
            summary_add "$dir/report.md" "${dir#"$reports"/}/report.md"
        done
    fi

    # Why it failed, for the last step's annotations: a line per drill that did not pass.
    : > "$work/failures"
    if [ "${#records[@]}" -gt 0 ]; then
        jq -r 'select(.verdict != "pass")
            | "\(.scenario.name)\t\(.verdict)\t\((.failure // "") | split("\n")[0])"' "${records[@]}" \
            > "$work/failures"
    fi
    [ "$verify_failed" = 0 ] || printf 'reports\tedited\ta report folder does not match its MANIFEST.sha256\n' >> "$work/failures"

    local junit=""
    [ -f "$work/merged/junit.xml" ] && junit="$work/merged/junit.xml"
    local artifact="$reports"
    [ "$command" = merge ] && artifact="$work/merged"
    output verdict "$verdict"
    output drills "$drills"
    output recovery-seconds "$seconds"
    output checks-failed "$checks_failed"
    output report-folder "$reports"
    output merged-folder "$work/merged"
    output junit "$junit"
    output artifact-path "$artifact"
    output failed "$([ "$verdict" = failed ] && echo true || echo false)"
    echo "pgdrill: $verdict ($passed of $drills drills passed, $checks_failed checks failed, exit $code)"
}

step_finish() {
    local work code
    work="$(work)"
    code="$(cat "$work/exit-code" 2>/dev/null || echo none)"
    local name verdict why
    while IFS=$'\t' read -r name verdict why; do
        [ -n "$name" ] || continue
        echo "::error title=$(escape_property "pgdrill: $name $verdict")::$(escape_data "${why:-$verdict}")"
    done < "$work/failures"
    local meaning
    case "$code" in
        0) meaning="the drills passed, but their reports did not verify" ;;
        1) meaning="pgdrill exited 1: a drill failed" ;;
        2) meaning="pgdrill exited 2: a scenario or the command line is unusable" ;;
        3) meaning="pgdrill exited 3: a drill could not run (its backup was not reached or its target did not start; run it again)" ;;
        130 | 143) meaning="pgdrill exited $code: interrupted" ;;
        *) meaning="pgdrill exited $code" ;;
    esac
    echo "::error::$meaning (see the job summary and the reports artifact)"
    exit 1
}

step_argv() {
    arguments "${PGDRILL_ACTION_COMMAND:-run}" "${PGDRILL_ACTION_REPORTS:-pgdrill-reports}" merged
}

case "${1:-}" in
    prepare | install | images | run | report | finish | argv) "step_$1" ;;
    *)
        echo "usage: $0 prepare|install|images|run|report|finish|argv" >&2
        exit 2
        ;;
esac

#!/usr/bin/env bash
# The dependency floors are true: install the lowest version pyproject.toml allows of
# every runtime dependency (.ci/lowest.py pins them) into a venv of its own and run,
# with the checkout's code, the tests that exercise each of them:
#   psutil: processes, system; click and py7zr: collect and its command line;
#   PyYAML: catalog, config formats; Jinja2: report; regex: redaction families;
#   pymongo, redis-py, pika: the datastore checks, against the real servers too.
# Left out: the tests whose own redis client needs redis-py 5 (the `[test]` extra asks
# for it; akdiag itself runs on 4.5), and the rest of the suite, which `.ci/test` runs
# with the newest versions (the whole suite twice would not fit CI's time).
# The `servers` tests need the environment `.ci/services.sh start` prints.
set -euo pipefail
cd "$(dirname "$0")/.."

# bash .ci/lowest.sh [pytest args]     the venv, then the tests (into a temporary folder)
# bash .ci/lowest.sh prepare DIR        only the venv, in DIR (.ci/test does this while the suite runs)
# bash .ci/lowest.sh test DIR [args]    only the tests, with DIR's venv
python=${PYTHON:-python3}

prepare() {
    "$python" -m venv "$1/venv"
    "$python" .ci/lowest.py > "$1/requirements.txt"
    # PyYAML 5.4 builds on Python 3.11 and newer only with Cython before 3.
    echo 'cython<3' > "$1/build-constraints.txt"
    PIP_CONSTRAINT="$1/build-constraints.txt" "$1/venv/bin/python" -m pip install -q \
        --disable-pip-version-check -r "$1/requirements.txt" 'pytest>=7' 'mockupdb>=1.8' 'hypothesis>=6'
}

run_tests() {
    local dir=$1; shift
    echo "lowest allowed versions:" $("$dir/venv/bin/python" -m pip list --format=freeze \
        | grep -i -E "^($(cut -d= -f1 "$dir/requirements.txt" | paste -sd'|'))==")
    PYTHONPATH=$PWD "$dir/venv/bin/python" -m pytest -q -p no:cacheprovider \
        tests/test_processes.py tests/test_system.py tests/test_collect.py tests/test_cli_errors.py \
        tests/test_catalog.py tests/test_config_formats.py tests/test_report.py tests/test_redact_families.py \
        tests/test_datastores_mongodb.py tests/test_datastores_resp.py tests/test_datastores_ssdb.py \
        tests/test_datastores_servers.py \
        --deselect tests/test_datastores_ssdb.py::test_the_stand_in_answers_as_the_capture_shows_and_rejects_hello \
        --deselect tests/test_datastores_servers.py::test_redis_info_sections \
        --deselect tests/test_datastores_servers.py::test_redis_with_a_password \
        "$@"
}

case "${1:-}" in
    prepare) prepare "$2" ;;
    test) dir=$2; shift 2; run_tests "$dir" "$@" ;;
    *)
        lowest=$(mktemp -d)
        trap 'rm -rf "$lowest"' EXIT
        prepare "$lowest"
        run_tests "$lowest" "$@" ;;
esac

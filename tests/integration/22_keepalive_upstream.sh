#!/usr/bin/env bash
# 22_keepalive_upstream: upstream connections are kept alive and reused: 20 sequential
# requests (one curl with 20 URLs, and 20 separate curl processes) reach the simulator on
# fewer distinct upstream connections than requests.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_all
N=20

# urls PREFIX: curl arguments for N URLs under PREFIX, each with its own -o /dev/null
# (one -o applies to one URL), one argument a line
urls() {
    local i
    for ((i = 1; i <= N; i++)); do printf '%s\n' -o /dev/null "$SG_URL$1/$i"; done
}

for proto in http1.1 http2; do
    check "one curl --$proto process, $N URLs one after another"
    mapfile -t U < <(urls "/sim/echo/ka-one-$proto")
    codes=$(sg_curl "--$proto" -w '%{http_code} %{num_connects}\n' "${U[@]}")
    assert_eq "$N" "$(grep -c '^200 ' <<<"$codes")" "200 answers"
    assert_eq 1 "$(awk '{n += $2} END {print n}' <<<"$codes")" "client connections curl opened"
    n=$(record_conn_ids "/sim/echo/ka-one-$proto/")
    echo "   $N requests reached the simulator on $n upstream connection(s)"
    assert_eq "$N" "$(record_paths | grep -c "^/sim/echo/ka-one-$proto/")" "recorded requests"
    assert_lt "$n" "$N" "distinct upstream connections for $N requests"
    assert_le "$n" 4 "distinct upstream connections (2 workers, sequential requests)"

    check "$N separate curl --$proto processes, one after another"
    for ((i = 1; i <= N; i++)); do
        code=$(sg_curl "--$proto" -o /dev/null -w '%{http_code}' "$SG_URL/sim/echo/ka-sep-$proto/$i")
        assert_eq 200 "$code" "status of request $i"
    done
    n=$(record_conn_ids "/sim/echo/ka-sep-$proto/")
    echo "   $N requests reached the simulator on $n upstream connection(s)"
    assert_eq "$N" "$(record_paths | grep -c "^/sim/echo/ka-sep-$proto/")" "recorded requests"
    assert_lt "$n" "$N" "distinct upstream connections for $N requests"
    assert_le "$n" 4 "distinct upstream connections (2 workers, sequential requests)"
done

check "a POST with a body in between does not break reuse"
code=$(sg_curl --http1.1 -o /dev/null -w '%{http_code}' --data-binary 'abc' "$SG_URL/sim/echo/ka-post")
assert_eq 200 "$code" "POST status"
mapfile -t U < <(urls "/sim/echo/ka-after")
codes=$(sg_curl --http1.1 -w '%{http_code} %{num_connects}\n' "${U[@]}")
assert_eq "$N" "$(grep -c '^200 ' <<<"$codes")" "200 answers after the POST"
n=$(record_conn_ids "/sim/echo/ka-after/")
assert_lt "$n" "$N" "distinct upstream connections after the POST"

echo "PASS: $TEST_NAME"

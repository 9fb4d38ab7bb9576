//! The differential suite's queries: templates over every function,
//! aggregation and operator of Prometheus 2.42, edge cases and parse
//! errors, and seeded random compositions.

/// Returns the corpus: templates over counters, gauges, a histogram, `up`.
pub fn corpus(at_s: f64) -> Vec<String> {
    let mut q: Vec<String> = Vec::new();
    let counters = [
        "http_requests_total",
        r#"http_requests_total{job="api"}"#,
        r#"http_requests_total{instance="i1"}"#,
    ];
    // 30s548ms: one of the ranges whose seconds Go's Duration.Seconds
    // rounds differently from milliseconds / 1000.
    let ranges = ["1m", "5m", "2m30s", "30s548ms"];
    for c in counters {
        for f in [
            "rate", "irate", "increase", "delta", "idelta", "resets", "changes", "deriv",
        ] {
            for r in ranges {
                q.push(format!("{f}({c}[{r}])"));
            }
        }
    }
    for g in ["node_temp", "node_load"] {
        for f in [
            "avg_over_time",
            "min_over_time",
            "max_over_time",
            "sum_over_time",
            "count_over_time",
            "stddev_over_time",
            "stdvar_over_time",
            "last_over_time",
            "present_over_time",
            "delta",
            "deriv",
            "changes",
            "resets",
            "idelta",
        ] {
            for r in ranges {
                q.push(format!("{f}({g}[{r}])"));
            }
        }
        for phi in ["0", "0.25", "0.9", "1", "-1", "2"] {
            q.push(format!("quantile_over_time({phi}, {g}[5m])"));
        }
        q.push(format!("predict_linear({g}[5m], 300)"));
        q.push(format!("predict_linear({g}[10m], -60)"));
        q.push(format!("holt_winters({g}[5m], 0.3, 0.6)"));
        q.push(format!("holt_winters({g}[10m], 0.9, 0.1)"));
        for f in [
            "abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "sgn", "deg", "rad",
            "cos", "sin", "tan", "acos", "asin", "atan", "cosh", "sinh", "tanh", "acosh", "asinh",
            "atanh",
        ] {
            q.push(format!("{f}({g})"));
        }
        q.push(format!("round({g})"));
        q.push(format!("round({g}, 0.5)"));
        q.push(format!("round({g}, 0.1)"));
        q.push(format!("clamp({g}, 0, 15)"));
        q.push(format!("clamp({g}, 15, 0)"));
        q.push(format!("clamp_min({g}, 15)"));
        q.push(format!("clamp_max({g}, 0.5)"));
        q.push(format!("timestamp({g})"));
        q.push(format!("sort({g})"));
        q.push(format!("sort_desc({g})"));
        q.push(format!("-{g}"));
        q.push(format!("{g} offset 5m"));
        q.push(format!("{g} offset -2m"));
        q.push(format!("{g} @ {at_s}"));
        q.push(format!("{g} @ start()"));
        q.push(format!("{g} @ end()"));
        q.push(format!("sum({g} @ end())"));
        q.push(format!("max_over_time({g}[3m] @ {at_s})"));
    }
    for agg in [
        "sum", "avg", "min", "max", "count", "group", "stddev", "stdvar",
    ] {
        q.push(format!("{agg}(node_temp)"));
        q.push(format!("{agg} by (job) (http_requests_total)"));
        q.push(format!(
            "{agg} without (instance) (rate(http_requests_total[5m]))"
        ));
        q.push(format!(
            "{agg} by (instance, code) (increase(http_requests_total[2m]))"
        ));
        q.push(format!("{agg} by (__name__) ({{job=\"node\"}})"));
        q.push(format!("{agg} without () (up)"));
    }
    for k in ["1", "2", "10", "0", "-1"] {
        q.push(format!("topk({k}, node_temp)"));
        q.push(format!("bottomk({k}, node_temp)"));
        q.push(format!(
            "topk by (job) ({k}, rate(http_requests_total[5m]))"
        ));
    }
    for phi in ["0", "0.5", "0.9", "1", "1.5", "-0.5"] {
        q.push(format!("quantile({phi}, node_temp)"));
        q.push(format!(
            "quantile by (job) ({phi}, rate(http_requests_total[5m]))"
        ));
    }
    q.push(r#"count_values("v", up)"#.into());
    q.push(r#"count_values by (job) ("v", up)"#.into());
    q.push(r#"count_values("x", round(node_temp))"#.into());
    for op in ["+", "-", "*", "/", "%", "^", "atan2"] {
        q.push(format!("node_temp {op} 3"));
        q.push(format!("3 {op} node_load"));
        q.push(format!("node_temp {op} on(instance) node_load"));
        q.push(format!("node_temp {op} ignoring(job) node_load"));
    }
    for op in ["==", "!=", ">", "<", ">=", "<="] {
        q.push(format!("node_temp {op} 20"));
        q.push(format!("20 {op} node_temp"));
        q.push(format!("node_temp {op} bool 20"));
        q.push(format!("node_temp {op} on(instance) node_load"));
        q.push(format!("node_temp {op} bool on(instance) node_load"));
        q.push(format!("1 {op} bool 2"));
    }
    q.extend(
        [
            "http_requests_total / on(instance) group_left up",
            "up * on(instance) group_right http_requests_total",
            "http_requests_total * on(instance) group_left(version) build_info",
            "rate(http_requests_total[5m]) / ignoring(code, method) group_left sum without (code, method) (rate(http_requests_total[5m]))",
            "sum by (instance) (rate(http_requests_total[5m])) / on(instance) up",
            "http_requests_total / on(instance) up",
            "up / on(job) http_requests_total",
            "http_requests_total + up",
            "up and on(instance) node_temp",
            "up and node_temp",
            "node_temp or up",
            "node_temp or on(instance) up",
            "node_temp unless on(instance) up",
            "up unless up",
            "(up == 0) or (up * 2)",
            "sum(rate(http_requests_total[5m])) by (code) > bool 0.1",
            "histogram_quantile(0.9, sum by (le) (rate(req_duration_seconds_bucket[5m])))",
            "histogram_quantile(0.5, req_duration_seconds_bucket)",
            "histogram_quantile(0.9, rate(req_duration_seconds_bucket[5m]))",
            "rate(req_duration_seconds_sum[5m]) / rate(req_duration_seconds_count[5m])",
            "max_over_time(rate(http_requests_total[1m])[10m:1m])",
            "avg_over_time(node_temp[5m:30s])",
            "min_over_time(sum(node_temp)[7m:])",
            "rate(http_requests_total[5m:1m])",
            "max_over_time(deriv(node_temp[3m])[15m:2m] offset 5m)",
            "sum_over_time(up[10m:45s])",
            "rate(http_requests_total[5m] offset 10m)",
            "vector(1)",
            "vector(time())",
            "scalar(sum(node_temp))",
            "scalar(node_temp)",
            "time()",
            "pi()",
            "timestamp(sum(node_temp))",
            "absent(nonexistent)",
            "absent(node_temp)",
            r#"absent(nonexistent{job="x", instance=~"y"})"#,
            r#"absent(nonexistent{job="x", job="y"})"#,
            "absent_over_time(nonexistent[5m])",
            "absent_over_time(node_temp[5m])",
            r#"absent_over_time(http_requests_total{instance="i2"}[1m])"#,
            r#"label_replace(up, "foo", "$1-x", "instance", "i(.*)")"#,
            r#"label_replace(up, "foo", "$1", "instance", "nomatch")"#,
            r#"label_replace(up, "instance", "", "instance", ".*")"#,
            r#"label_join(up, "x", "-", "job", "instance")"#,
            r#"label_join(up, "job", "", "nonexistent")"#,
            "day_of_week()",
            "day_of_month()",
            "day_of_year()",
            "days_in_month()",
            "hour()",
            "minute()",
            "month()",
            "year()",
            "hour(timestamp(up))",
            "day_of_week(vector(1e9))",
            "days_in_month(vector(951782400))",
            "1",
            "1 + 2 * 3",
            "-(-1)",
            "2 ^ 3 ^ 2",
            "-2 ^ 2",
            "1 / 0",
            "-1 / 0",
            "0 / 0",
            "5 % 0",
            "5 % -3",
            "-5 % 3",
            r#""a string""#,
            "node_temp[5m]",
            "rate(node_temp)",
            "holt_winters(node_temp[5m], 2, 0.5)",
            "sum(node_temp[5m])",
            "nonexistent",
            "rate(nonexistent[5m])",
            "sum(nonexistent)",
            r#"{__name__=~"node_.*", instance="i1"}"#,
            r#"{job="api", __name__!="up"}"#,
            "count(http_requests_total offset 20m)",
            "changes(up[15m])",
            "resets(http_requests_total[50m])",
            "increase(http_requests_total[50m])",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    q.extend(edge_cases(at_s));
    // PROMQL_SEED and PROMQL_RANDOM widen a local run (the CI run is fixed).
    let seed = std::env::var("PROMQL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(42);
    let n = std::env::var("PROMQL_RANDOM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(250);
    q.extend(random_queries(seed, n));
    q
}

/// Edge cases: NaN in aggregations, matching corner cases, ranges at the
/// sample interval, labels set by functions, nested subqueries, parse errors.
fn edge_cases(at_s: f64) -> Vec<String> {
    let mut q: Vec<String> = [
        "sum by (job) (node_temp) > 100",
        "count(count by (job) (up))",
        "avg(node_temp) by (job)",
        "sum without (job, instance) (http_requests_total)",
        "group by (job) (node_temp)",
        "stddev by (job, instance, code, method) (http_requests_total)",
        "topk(scalar(vector(2)), node_temp)",
        "quantile(scalar(up), node_temp)",
        "quantile(0/0, node_temp)",
        r#"count_values("le", node_temp)"#,
        r#"count_values("v", node_temp * 0 + 1)"#,
        "max(node_temp)",
        "min(node_temp)",
        "topk(4, node_temp)",
        "bottomk(4, node_temp)",
        "sort(node_temp)",
        "sort_desc(-node_temp)",
        "node_temp == node_temp",
        "node_temp > node_load",
        "node_temp > bool node_load",
        "up == bool 1",
        "up != 0",
        "(node_temp > 20) + 1",
        "node_temp / 0",
        "0 / node_temp",
        "up + on() vector(1)",
        "up + on() group_left vector(1)",
        "vector(1) + on() group_right up",
        "sum(up) + sum(node_temp)",
        "scalar(up) * up",
        "-node_temp * -1",
        "up > 0.5 unless up < 0.5",
        "node_temp % 3 == bool 0",
        "node_load atan2 node_temp",
        "http_requests_total > on(instance, job) group_left node_temp",
        "http_requests_total * ignoring(code, method) group_left up",
        "sum by (instance) (http_requests_total) * on(instance) group_right sum by (instance, job) (up)",
        "rate(node_temp[5m])",
        "increase(up[10m])",
        "irate(node_load[1m])",
        "delta(node_temp[30s])",
        "rate(http_requests_total[20s])",
        "rate(http_requests_total[15s])",
        "increase(http_requests_total[15s])",
        "deriv(up[5m])",
        "predict_linear(up[5m], 100)",
        "holt_winters(up[5m], 0.5, 0.5)",
        "changes(node_temp[50m])",
        "timestamp(node_temp offset 1m)",
        "timestamp(rate(http_requests_total[5m]))",
        r#"label_replace(node_temp, "dst", "$1$1", "instance", "(.)(.)")"#,
        r#"label_replace(node_temp, "dst", "${1}x$2", "instance", "(.)(.)")"#,
        r#"label_replace(node_temp, "__name__", "renamed", "instance", "i0")"#,
        r#"label_replace(node_temp, "1bad", "x", "instance", ".*")"#,
        r#"label_replace(node_temp, "dst", "x", "instance", "(")"#,
        r#"label_join(node_temp, "1bad", ",", "job")"#,
        r#"label_join(node_temp, "dst", ",", "instance", "job", "instance")"#,
        "sort_desc(http_requests_total)",
        "sqrt(-node_temp)",
        "ln(0 * node_temp)",
        "exp(node_temp * 100)",
        "absent(sum(nonexistent))",
        "absent(rate(nonexistent[5m]))",
        "vector(scalar(sum(up)))",
        r#"histogram_quantile(0.5, rate(req_duration_seconds_bucket{instance="i0"}[1m]))"#,
        "histogram_quantile(0.9, sum by (le, instance) (rate(req_duration_seconds_bucket[2m])))",
        "histogram_quantile(0.5, node_temp)",
        "histogram_quantile(0.5, sum by (le) (req_duration_seconds_bucket))",
        "month(vector(1e10))",
        "year(node_temp * 1e7)",
        "day_of_month(node_temp * 86400)",
        "clamp_min(node_temp, 0/0)",
        "round(node_temp, -1)",
        "round(node_temp, 3)",
        "rate(http_requests_total[5m:30s] offset 3m)",
        "max_over_time(avg_over_time(node_temp[2m:30s])[6m:1m])",
        "time() - 100",
        "scalar(vector(1)) + time()",
        "vector(1) > bool 2",
        "(1 > bool 2) + 3",
        "sum(",
        "node_temp{",
        "rate(node_temp[5m]",
        "1 +",
        "node_temp > 1 bool",
        "node_temp offset",
        "rate(http_requests_total)",
        "sum by (job) (1)",
        "topk(node_temp, 2)",
        r#"label_replace(node_temp, "a", "b")"#,
        "1 > 2",
        "node_temp and 1",
        "-\"str\"",
        "time(1)",
        "up[5m:1m][10m:2m]",
        "max_over_time(up[5m:1m][10m:2m])",
        "quantile_over_time(0.5, http_requests_total[10m:1m])",
        "last_over_time(node_temp[3m] offset 1m)",
        "present_over_time(nonexistent[5m])",
        "count_over_time(http_requests_total[50m])",
        "avg_over_time(node_temp[50m])",
        "stddev_over_time(http_requests_total[10m])",
        "sum(rate(http_requests_total[5m])) by (job) / ignoring(job) group_left sum(rate(http_requests_total[5m]))",
        "up offset 50m",
        "up offset 1h",
        "topk(1e30, node_temp)",
        "topk(0/0, node_temp)",
        "bottomk(-1e30, node_temp)",
        "topk(2.9, node_temp)",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    q.push(format!("max_over_time(node_temp[10m:1m] @ {at_s})"));
    q.push("sum_over_time(node_temp[2m:] @ start())".into());
    q.push(format!("rate(http_requests_total[5m] @ {at_s} offset 1m)"));
    q.push(format!("timestamp(node_temp @ {at_s})"));
    q
}

/// A tiny seeded generator for [`random_queries`].
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// `n` random compositions of selectors, range functions, subqueries,
/// instant functions, aggregations and operators (seeded, so every run
/// asks the same), to catch what the templates do not combine.
fn random_queries(seed: u64, n: usize) -> Vec<String> {
    fn vector(r: &mut Lcg, depth: u32) -> String {
        let leaf = [
            "node_temp",
            "node_load",
            "up",
            "http_requests_total",
            r#"http_requests_total{code="200"}"#,
            "req_duration_seconds_count",
        ];
        if depth == 0 {
            return r.pick(&leaf).to_string();
        }
        let ranges = ["30s", "1m", "2m", "5m", "10m"];
        let labels = ["job", "instance", "code", "job, instance", ""];
        match r.next() % 9 {
            0 => r.pick(&leaf).to_string(),
            1 => {
                let f = r.pick(&[
                    "rate",
                    "increase",
                    "delta",
                    "irate",
                    "deriv",
                    "avg_over_time",
                    "max_over_time",
                    "min_over_time",
                    "sum_over_time",
                    "count_over_time",
                    "stddev_over_time",
                    "changes",
                    "resets",
                    "last_over_time",
                ]);
                format!("{f}({}[{}])", r.pick(&leaf), r.pick(&ranges))
            }
            2 => {
                let f = r.pick(&[
                    "max_over_time",
                    "avg_over_time",
                    "min_over_time",
                    "sum_over_time",
                    "rate",
                    "deriv",
                ]);
                let step = r.pick(&["", "30s", "1m", "45s"]);
                format!(
                    "{f}(({})[{}:{step}])",
                    vector(r, depth - 1),
                    r.pick(&ranges)
                )
            }
            3 => {
                // Not timestamp: aggregating values near 1.8e9 cancels
                // catastrophically, and Prometheus's range evaluation
                // sums in a random order.
                let f = r.pick(&[
                    "abs", "ceil", "floor", "sqrt", "ln", "exp", "sgn", "round", "-",
                ]);
                format!("{f}({})", vector(r, depth - 1))
            }
            4 | 5 => {
                let a = r.pick(&["sum", "avg", "min", "max", "count", "stddev", "group"]);
                let grouping = match r.next() % 3 {
                    0 => String::new(),
                    1 => format!(" by ({})", r.pick(&labels)),
                    _ => format!(" without ({})", r.pick(&labels)),
                };
                format!("{a}{grouping} ({})", vector(r, depth - 1))
            }
            6 => {
                let op = r.pick(&["+", "-", "*", "/", ">", "<", "== bool", "> bool"]);
                format!(
                    "({}) {op} {}",
                    vector(r, depth - 1),
                    r.pick(&["0.5", "2", "20", "-1"])
                )
            }
            7 => {
                let op = r.pick(&[
                    "+",
                    "/",
                    "*",
                    "and",
                    "or",
                    "unless",
                    ">",
                    "- ignoring(code)",
                ]);
                let m = r.pick(&["", " on(instance)", " on(job, instance)", " ignoring(job)"]);
                format!(
                    "({}) {op}{m} ({})",
                    vector(r, depth - 1),
                    vector(r, depth - 1)
                )
            }
            _ => {
                // Not topk/bottomk: over a computed vector, which of equal
                // values they keep depends on Prometheus's map order, which
                // is random (the templates test them on fixed inputs).
                let f = r.pick(&["clamp_min", "clamp_max"]);
                format!(
                    "{f}({}, {})",
                    vector(r, depth - 1),
                    r.pick(&["0", "1", "20"])
                )
            }
        }
    }
    let mut r = Lcg(seed);
    (0..n).map(|_| vector(&mut r, 3)).collect()
}

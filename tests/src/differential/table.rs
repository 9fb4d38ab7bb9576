//! The case table: every case with what it proves. Cases are grouped by the
//! issue's bullets; `up(...)` is what Prometheus 2.42 stores for `up`.

use std::sync::Arc;

use super::cases::{
    bytes, case, finish, gen_om, gen_pb, gen_text, om, pb, text, Address, Case, CT_OM, CT_PB,
};
use super::jobs::Job::*;
use super::proto::{delimited, exemplar, family, metric, MetricType as T};

/// Returns every case.
pub fn all() -> Vec<Arc<Case>> {
    let mut v = Vec::new();
    v.extend(text_format());
    v.extend(openmetrics());
    v.extend(protobuf());
    v.extend(content_type());
    v.extend(labels());
    v.extend(metric_relabel());
    v.extend(target_relabel());
    v.extend(limits());
    v.extend(failures());
    v.extend(staleness());
    finish(v)
}

fn text_format() -> Vec<Case> {
    vec![
        case("t_basic", Plain, "HELP/TYPE lines, counter, gauge and labels are stored as written")
            .phase(text("# HELP t_req Requests.\n# TYPE t_req counter\nt_req{code=\"200\"} 7\nt_req{code=\"500\"} 1\n# TYPE t_temp gauge\nt_temp -3.5\n")),
        case("t_float_spellings", Plain, "every float spelling Go's ParseFloat takes: Inf/NaN in any case, exponents, signs, -0")
            .phase(text("f{v=\"a\"} +Inf\nf{v=\"b\"} -Inf\nf{v=\"c\"} NaN\nf{v=\"d\"} Inf\nf{v=\"e\"} inf\nf{v=\"f\"} nan\nf{v=\"g\"} +infinity\nf{v=\"h\"} -Infinity\nf{v=\"i\"} 1e3\nf{v=\"j\"} 1E-3\nf{v=\"k\"} .5\nf{v=\"l\"} 5.\nf{v=\"m\"} +1\nf{v=\"n\"} -0\nf{v=\"o\"} 1.7976931348623157e308\nf{v=\"p\"} 4.9e-324\n")),
        case("t_float_plus_nan", Plain, "\"+NaN\" is not a Go float: the scrape fails")
            .phase(text("ok 1\nf +NaN\n")).up("0"),
        case("t_float_hex", Plain, "hex floats (with p) are refused")
            .phase(text("f 0x1p3\n")).up("0"),
        case("t_float_hexint", Plain, "a hex integer without p exponent")
            .phase(text("f 0x10\n")).up("0"),
        case("t_float_underscore", Plain, "digit separators are refused")
            .phase(text("f 1_000\n")).up("0"),
        case("t_float_overflow", Plain, "a value beyond f64 range is an error")
            .phase(text("f 1e400\n")).up("0"),
        case("t_escapes", Plain, "label value escapes \\\" \\\\ \\n are decoded, other escapes kept")
            .phase(text("e{l=\"q\\\"b\\\\n\\nt\\tx\\q\"} 1\n")),
        case("t_utf8", Plain, "UTF-8 label values are kept byte for byte")
            .phase(text("u{l=\"ünïcödé ✓ 日本\"} 1\n")),
        case("t_invalid_utf8", Plain, "an invalid UTF-8 label value fails the scrape")
            .phase(bytes(b"ok 1\nu{l=\"\xff\xfe\"} 1\n")).up("0"),
        case("t_invalid_utf8_help", Plain, "invalid UTF-8 in HELP text")
            .phase(bytes(b"# HELP h bad \xff\nh 1\n")).up("0"),
        case("t_dup_series", Plain, "the same series twice with one value: both counted, one stored")
            .phase(text("d{a=\"1\"} 5\nd{a=\"1\"} 5\nother 1\n")),
        case("t_dup_series_diff", Plain, "the same series twice with two values in one scrape")
            .phase(text("d{a=\"1\"} 5\nd{a=\"1\"} 6\nother 1\n")),
        case("t_blank_lines", Plain, "blank and blank-only lines are skipped")
            .phase(text("\n\na 1\n\n   \n\t\nb 2\n\n")),
        case("t_trailing_data", Plain, "extra tokens after the timestamp fail the scrape")
            .phase(text("a 1 1000 extra\n")).up("0"),
        case("t_comments", Plain, "free comments, #-without-space, # EOF and # UNIT are plain comments in text")
            .phase(text("# just a comment\n#nospace\n# EOF\n# UNIT a seconds\na 1\n#\n")),
        case("t_help_type", Plain, "HELP with escapes, TYPE of every kind, TYPE without samples")
            .phase(text("# HELP a line1\\nline2 \\\\ \\t\n# TYPE a counter\na 1\n# TYPE b untyped\nb 2\n# TYPE nothing summary\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0.5\n")),
        case("t_type_invalid", Plain, "an unknown TYPE kind fails the scrape")
            .phase(text("# TYPE a gaugeish\na 1\n")).up("0"),
        case("t_help_no_name", Plain, "a bare # HELP line")
            .phase(text("# HELP\na 1\n")).up("0"),
        case("t_no_final_newline", Plain, "the last newline is optional")
            .phase(text("a 1\nb 2")),
        case("t_crlf", Plain, "\\r\\n line endings fail (\\r is part of the value)")
            .phase(text("a 1\r\nb 2\r\n")).up("0"),
        case("t_timestamp_ms", Plain, "an explicit timestamp (ms) is honored")
            .phase(gen_text(|c| format!("ts_a 1 {}\nts_b 2\n", c.now_ms - 1000).into_bytes())),
        case("t_timestamp_negative", Plain, "a signed timestamp fails the scrape")
            .phase(text("a 1 -5\n")).up("0"),
        case("t_timestamp_fraction", Plain, "a fractional timestamp fails the scrape")
            .phase(text("a 1 1.5\n")).up("0"),
        case("t_whitespace", Plain, "blanks around every token, trailing comma, no blank before the value")
            .phase(text("w1 { a = \"1\" , b=\"2\", }\t3\nw2{c=\"x\"}4\n  w3   5  \n")),
        case("t_names", Plain, "colons and underscores in metric names")
            .phase(text("a:b:c 1\n_x 2\n__y 3\nZ9 4\n")),
        case("t_invalid_label_name", Plain, "a label name starting with a digit fails the scrape")
            .phase(text("ok 1\na{1b=\"c\"} 1\n")).up("0"),
        case("t_unquoted_value", Plain, "an unquoted label value fails the scrape")
            .phase(text("a{b=c} 1\n")).up("0"),
        case("t_name_in_block", Plain, "__name__ inside the label block")
            .phase(text("a{__name__=\"b\"} 1\n")).up("0"),
        case("t_dup_label", Plain, "one label name twice in a series")
            .phase(text("a{x=\"1\",x=\"2\"} 1\n")).up("0"),
        case("t_nul_line", Plain, "a NUL byte where a line starts")
            .phase(bytes(b"a 1\n\0b 2\n")),
        case("t_empty_body", Plain, "an empty body is a successful scrape of 0 samples")
            .phase(text("")),
        case("t_summary", Plain, "a classic summary and histogram in text")
            .phase(text("# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.99\"} 2\ns_sum 10\ns_count 5\n# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_sum 2.5\nh_count 3\n")),
        case("t_many_series", Plain, "500 series in one scrape, with a long label value")
            .phase(gen_text(|_| {
                let mut s = String::new();
                for i in 0..500 {
                    s.push_str(&format!("many{{i=\"{i}\",long=\"{}\"}} {i}\n", "x".repeat(100)));
                }
                s.into_bytes()
            })),
    ]
}

fn openmetrics() -> Vec<Case> {
    vec![
        case("om_counter", Plain, "OM counter: _total and _created are stored as series")
            .phase(om("# HELP oc A counter.\n# TYPE oc counter\noc_total{a=\"1\"} 3\noc_created{a=\"1\"} 1.6e9\n# EOF\n")),
        case("om_gauge_unit", Plain, "OM gauge with # UNIT")
            .phase(om("# TYPE og_seconds gauge\n# UNIT og_seconds seconds\n# HELP og_seconds Time.\nog_seconds 1.5\n# EOF\n")),
        case("om_histogram", Plain, "OM histogram with _created")
            .phase(om("# TYPE oh histogram\noh_bucket{le=\"0.5\"} 1\noh_bucket{le=\"+Inf\"} 2\noh_count 2\noh_sum 1.5\noh_created 1.6e9\n# EOF\n")),
        case("om_gaugehistogram", Plain, "OM gaugehistogram: _bucket, _gcount, _gsum")
            .phase(om("# TYPE ogh gaugehistogram\nogh_bucket{le=\"1\"} 1\nogh_bucket{le=\"+Inf\"} 3\nogh_gcount 3\nogh_gsum 4\n# EOF\n")),
        case("om_summary", Plain, "OM summary with quantiles, _count, _sum, _created")
            .phase(om("# TYPE os summary\nos{quantile=\"0.9\"} 2\nos_count 4\nos_sum 8\nos_created 1.6e9\n# EOF\n")),
        case("om_info", Plain, "OM info: _info series with value 1")
            .phase(om("# TYPE oi info\noi_info{version=\"1.2\"} 1\n# EOF\n")),
        case("om_stateset", Plain, "OM stateset: one series per state")
            .phase(om("# TYPE ost stateset\nost{ost=\"a\"} 1\nost{ost=\"b\"} 0\n# EOF\n")),
        case("om_unknown", Plain, "OM unknown type")
            .phase(om("# TYPE ou unknown\nou 7\n# EOF\n")),
        case("om_exemplar", Plain, "a counter exemplar is parsed; the sample is stored")
            .phase(om("# TYPE oe counter\noe_total 5 # {trace_id=\"abc\"} 0.5 1600000000.5\n# EOF\n")),
        case("om_exemplar_bucket", Plain, "histogram bucket exemplars")
            .phase(om("# TYPE oeb histogram\noeb_bucket{le=\"1\"} 1 # {trace_id=\"x\"} 0.3\noeb_bucket{le=\"+Inf\"} 1 # {trace_id=\"y\"} 0.3 1600000000\noeb_count 1\noeb_sum 0.3\n# EOF\n")),
        case("om_exemplar_too_long", Plain, "exemplar labels over 128 runes fail the scrape")
            .phase(om(&format!("# TYPE oel counter\noel_total 1 # {{trace_id=\"{}\"}} 1\n# EOF\n", "x".repeat(130)))).up("0"),
        case("om_timestamp_seconds", Plain, "OM timestamps are seconds with a fraction")
            .phase(gen_om(|c| format!("ots 1 {:.3}\nots2 2 {}\n# EOF\n", (c.now_ms - 1000) as f64 / 1000.0, c.now_ms / 1000 - 1).into_bytes())),
        case("om_no_eof", Plain, "an OM body without # EOF fails the scrape")
            .phase(om("a 1\n")).up("0"),
        case("om_after_eof", Plain, "data after # EOF fails the scrape")
            .phase(om("a 1\n# EOF\nb 2\n")).up("0"),
        case("om_eof_no_newline", Plain, "# EOF without a final newline")
            .phase(om("a 1\n# EOF")),
        case("om_blank_line", Plain, "a blank line is invalid in OM")
            .phase(om("a 1\n\nb 2\n# EOF\n")).up("0"),
        case("om_type_untyped", Plain, "'untyped' is not an OM type")
            .phase(om("# TYPE a untyped\na 1\n# EOF\n")).up("0"),
        case("om_counter_no_total", Plain, "an OM counter sample without _total")
            .phase(om("# TYPE oct counter\noct 1\n# EOF\n")).up("0"),
        case("om_special_floats", Plain, "+Inf, -Inf, NaN in OM")
            .phase(om("osf{v=\"a\"} +Inf\nosf{v=\"b\"} -Inf\nosf{v=\"c\"} NaN\nosf{v=\"d\"} 1e-3\n# EOF\n")),
        case("om_escapes", Plain, "OM label escapes")
            .phase(om("oesc{l=\"q\\\"b\\\\n\\n\"} 1\n# EOF\n")),
        case("om_empty", Plain, "a body of only # EOF is a successful empty scrape")
            .phase(om("# EOF\n")),
        case("om_invalid_label", Plain, "an invalid OM label name fails the scrape")
            .phase(om("a{1b=\"c\"} 1\n# EOF\n")).up("0"),
        case("om_text_spacing", Plain, "text-format spacing (blanks before {) is invalid in OM")
            .phase(om("a {b=\"c\"} 1\n# EOF\n")).up("0"),
    ]
}

fn pb_basic() -> Vec<u8> {
    delimited(&[
        family("pb_req", "Requests.", T::Counter, vec![
            metric(&[("code", "200")]).counter(7.0, None),
            metric(&[("code", "500")]).counter(1.0, None),
        ]),
        family("pb_temp", "", T::Gauge, vec![metric(&[]).gauge(-3.5)]),
    ])
}

fn protobuf() -> Vec<Case> {
    let truncated = {
        let b = pb_basic();
        b[..b.len() - 3].to_vec()
    };
    vec![
        case("pb_counter_gauge", Plain, "protobuf counter and gauge families")
            .phase(pb(pb_basic())),
        case("pb_summary", Plain, "protobuf summary: quantiles, _sum, _count")
            .phase(pb(delimited(&[family("pb_sum", "", T::Summary, vec![
                metric(&[("a", "b")]).summary(5, 10.5, &[(0.5, 1.0), (0.99, 2.0)]),
            ])]))),
        case("pb_histogram", Plain, "protobuf classic histogram (no +Inf bucket given)")
            .phase(pb(delimited(&[family("pb_hist", "", T::Histogram, vec![
                metric(&[]).histogram(3, 2.5, &[(0.1, 1), (1.0, 2)]),
            ])]))),
        case("pb_gauge_histogram", Plain, "protobuf GAUGE_HISTOGRAM")
            .phase(pb(delimited(&[family("pb_gh", "", T::GaugeHistogram, vec![
                metric(&[]).histogram(3, 4.0, &[(1.0, 1), (f64::INFINITY, 3)]),
            ])]))),
        case("pb_untyped_ts", Plain, "protobuf untyped with timestamp_ms is honored")
            .phase(gen_pb(|c| delimited(&[family("pb_unt", "", T::Untyped, vec![
                metric(&[("x", "y")]).untyped(42.0).timestamp_ms(c.now_ms - 1000),
                metric(&[("x", "z")]).untyped(f64::NAN),
            ])]))),
        case("pb_exemplar", Plain, "protobuf counter with an exemplar")
            .phase(pb(delimited(&[family("pb_ex", "", T::Counter, vec![
                metric(&[]).counter(9.0, Some(exemplar(&[("trace_id", "t1")], 1.0, 1_600_000_000_000))),
            ])]))),
        case("pb_truncated", Plain, "a truncated protobuf body fails the scrape")
            .phase(pb(truncated)).up("0"),
        case("pb_empty", Plain, "an empty protobuf body is a successful empty scrape")
            .phase(pb(Vec::new())),
        case("pb_invalid_label_name", Plain, "protobuf can carry a label name the text format cannot")
            .phase(pb(delimited(&[family("pb_bad", "", T::Gauge, vec![metric(&[("a-b", "1")]).gauge(1.0)])]))),
        case("pb_text_body", Plain, "protobuf Content-Type with a text body fails the scrape")
            .phase(text("a 1\n").ct(Some(CT_PB))).up("0"),
    ]
}

fn content_type() -> Vec<Case> {
    let om_only = "# TYPE cto counter\ncto_total 1\n";
    vec![
        case("ct_missing", Plain, "no Content-Type: the text parser")
            .phase(text("ct 1\n").ct(None)),
        case("ct_empty", Plain, "an empty Content-Type: the text parser")
            .phase(text("ct 1\n").ct(Some(""))),
        case("ct_unknown", Plain, "an unknown media type (application/json): the text parser")
            .phase(text("ct 1\n").ct(Some("application/json"))),
        case("ct_malformed", Plain, "a Content-Type that is not a media type: the text parser")
            .phase(text("ct 1\n").ct(Some("text/plain; version=0.0.4; =x"))),
        case("ct_malformed_om", Plain, "an OM media type with a malformed parameter falls back to text (no # EOF needed)")
            .phase(text(om_only).ct(Some("application/openmetrics-text; version"))),
        case("ct_om_case", Plain, "media types are case-insensitive: OM parser (fails without # EOF)")
            .phase(text(om_only).ct(Some("Application/OpenMetrics-Text; version=1.0.0"))).up("0"),
        case("ct_om_no_params", Plain, "a bare OM media type: OM parser")
            .phase(text("cto_total 1\n# EOF\n").ct(Some("application/openmetrics-text"))),
        case("ct_om_text_body", Plain, "OM Content-Type with a text body (no # EOF) fails")
            .phase(text("ct 1\n").ct(Some(CT_OM))).up("0"),
        case("ct_text_om_body", Plain, "text Content-Type with an OM body: # EOF and # UNIT are comments")
            .phase(text("# TYPE cto_seconds counter\n# UNIT cto_seconds seconds\ncto_seconds_total 1\n# EOF\n")),
        case("ct_text_om_exemplar", Plain, "text Content-Type with an OM exemplar fails")
            .phase(text("cte_total 1 # {a=\"b\"} 1\n# EOF\n")).up("0"),
    ]
}

fn labels() -> Vec<Case> {
    vec![
        case("l_exported", Plain, "honor_labels false: exposed job/instance become exported_*")
            .phase(text("m{job=\"x\",instance=\"y\",a=\"1\"} 1\n")),
        case("l_exported_twice", Plain, "a taken exported_job becomes exported_exported_job")
            .phase(text("m{job=\"x\",exported_job=\"y\"} 1\n")),
        case("l_exported_thrice", Plain, "renaming repeats as often as needed")
            .phase(text("m{job=\"x\",exported_job=\"y\",exported_exported_job=\"z\"} 1\n")),
        case("l_static_conflict", Plain, "a static target label conflicts with an exposed label")
            .label("team", "static")
            .phase(text("m{team=\"exposed\"} 1\nn 2\n")),
        case("l_empty_value", Plain, "an empty label value is absent: no conflict, no label")
            .phase(text("m{a=\"\"} 1\nn{job=\"\"} 2\n")),
        case("l_empty_dup", Plain, "m{a=\"\"} and m are the same series")
            .phase(text("m{a=\"\"} 1\nm 2\n")),
        case("h_keep", Honor, "honor_labels true: exposed job and static-conflicting labels win")
            .label("team", "static")
            .phase(text("m{job=\"exposed_job\",team=\"x\"} 1\nn 2\n")),
        case("h_instance", Honor, "honor_labels true: exposed instance wins")
            .phase(text("m{instance=\"h_instance_exposed\"} 1\n")),
        case("h_empty", Honor, "honor_labels true: an empty exposed job is absent, the target's is set")
            .phase(text("m{job=\"\"} 1\n")),
        case("nt_old", NoTime, "honor_timestamps false: a timestamp far in the past is ignored")
            .phase(text("m 1 1000\n")),
        case("nt_vanish", NoTime, "honor_timestamps false: a vanished timestamped series gets a stale marker")
            .repeats(2)
            .phase(gen_text(|c| format!("m 1 {}\nkeep 1\n", c.now_ms - 1000).into_bytes()))
            .phase(text("keep 1\n")),
        case("t_ts_old", Plain, "an explicit timestamp far in the past is out of bounds: skipped, scrape ok")
            .phase(text("old 1 1000\nfresh 2\n")),
    ]
}

fn metric_relabel() -> Vec<Case> {
    vec![
        case("mr_replace", MetricRelabel, "replace with two source labels, custom separator, ${1}")
            .phase(text("mr_replace{a=\"v\"} 1\nmr_other{a=\"v\"} 2\n")),
        case("mr_expand", MetricRelabel, "Go expansion: $1x is empty (deletes), ${1}x, $name, $$, missing $2, dynamic target label")
            .phase(text("mr_expand{a=\"val\",e1=\"orig\"} 1\n")),
        case("mr_default", MetricRelabel, "replace defaults: regex (.*), replacement $1")
            .phase(text("mr_default{dsrc=\"copied\"} 1\nmr_default2 2\n")),
        case("mr_anchored", MetricRelabel, "regexes are anchored: mr_anch drops only mr_anch")
            .phase(text("mr_anch 1\nmr_anchored 2\nanchored 3\n")),
        case("mr_keep", MetricRelabel, "keep: series whose k is empty or yes")
            .phase(text("mr_keep{k=\"yes\"} 1\nmr_keep{k=\"no\"} 2\nmr_keep 3\n")),
        case("mr_drop", MetricRelabel, "drop by name")
            .phase(text("mr_drop_me 1\nmr_stay 2\n")),
        case("mr_drop_all", MetricRelabel, "every sample dropped: post_metric_relabeling 0, up 1")
            .phase(text("mr_drop_a 1\nmr_drop_b 2\n")),
        case("mr_case_insensitive", MetricRelabel, "(?i) in a relabel regex")
            .phase(text("mr_ci_drop_x 1\nmr_ci_stay 2\n")),
        case("mr_keepequal", MetricRelabel, "keepequal: keep when source equals target label")
            .phase(text("mr_keepequal{ke_a=\"1\",ke_b=\"1\"} 1\nmr_keepequal{ke_a=\"1\",ke_b=\"2\"} 2\n")),
        case("mr_dropequal", MetricRelabel, "dropequal: drop when source equals target label")
            .phase(text("mr_dropequal{de_a=\"v\",de_b=\"mr_dropequal;v\"} 1\nmr_dropequal{de_a=\"v\",de_b=\"w\"} 2\n")),
        case("mr_hashmod", MetricRelabel, "hashmod (md5) into a __tmp label, copied, then labeldrop")
            .phase(text("mr_hashmod{hm=\"a\"} 1\nmr_hashmod{hm=\"b\"} 2\nmr_hashmod{hm=\"c\"} 3\n")),
        case("mr_labelmap", MetricRelabel, "labelmap with a replacement")
            .phase(text("mr_labelmap{lm_team=\"a\",lm_x=\"b\",other=\"c\"} 1\n")),
        case("mr_labeldrop", MetricRelabel, "labeldrop by regex")
            .phase(text("mr_labeldrop{ld_a=\"1\",ld_b=\"2\",keep=\"3\"} 1\n")),
        case("mr_labelkeep", MetricRelabel, "labelkeep drops the names it does not match")
            .phase(text("mr_labelkeep{z_gone=\"1\",zok=\"2\",z=\"3\"} 1\n")),
        case("mr_case", MetricRelabel, "lowercase and uppercase")
            .phase(text("mr_case{lc=\"MiXeD\",uc=\"MiXeD-ß\"} 1\n")),
        case("mr_rename", MetricRelabel, "__name__ as a replace target")
            .phase(text("mr_rename_me 1\n")),
    ]
}

fn target_relabel() -> Vec<Case> {
    vec![
        case("tr_address", TargetRelabel, "__address__ from a __meta label; instance defaults to the final address")
            .address(Address::Literal("wrong.invalid:1"))
            .no_static_instance()
            .label("rl", "address")
            .label("__meta_real_address", "FIXTURE")
            .phase(text("tr 1\n")),
        case("tr_path", TargetRelabel, "__metrics_path__ rewritten by relabeling")
            .label("rl", "path")
            .label("__metrics_path__", "/case/wrong")
            .phase(text("tr 1\n")),
        case("tr_param", TargetRelabel, "job params plus __param_<name> from relabeling, URL-encoded (echoed query)")
            .label("rl", "param")
            .phase(gen_text(|c| format!("tr_query{{q=\"{}\"}} 1\n", c.query).into_bytes())),
        case("tr_job_param", TargetRelabel, "a job-level param reaches the URL (echoed query)")
            .label("rl", "jobparam")
            .phase(gen_text(|c| format!("tr_query{{q=\"{}\"}} 1\n", c.query).into_bytes())),
        case("tr_interval", TargetRelabel, "__scrape_interval__ / __scrape_timeout__ from relabeling")
            .label("rl", "interval")
            .phase(text("tr 1\n")),
        case("tr_bad_timeout", TargetRelabel, "a timeout above the interval makes the target invalid")
            .label("rl", "badtimeout").uncounted().up("")
            .phase(text("tr 1\n")),
        case("tr_bad_interval", TargetRelabel, "an unparsable __scrape_interval__ makes the target invalid")
            .label("rl", "badinterval").uncounted().up("")
            .phase(text("tr 1\n")),
        case("tr_meta_tmp", TargetRelabel, "__meta_* and __tmp* are usable in rules and dropped after")
            .label("rl", "meta")
            .label("__meta_color", "blue")
            .phase(text("tr 1\n")),
        case("tr_labelmap", TargetRelabel, "labelmap of __meta_map_* onto target labels")
            .label("rl", "labelmap")
            .label("__meta_map_team", "core")
            .phase(text("tr 1\n")),
        case("tr_drop", TargetRelabel, "a dropped target is listed under droppedTargets")
            .label("rl", "drop").uncounted().up("")
            .phase(text("tr 1\n")),
        case("tr_keep_no", TargetRelabel, "keep drops a target whose label does not match")
            .label("rl", "keep").label("__meta_keep", "no").uncounted().up("")
            .phase(text("tr 1\n")),
        case("tr_dropequal", TargetRelabel, "dropequal on target labels")
            .label("rl", "dropequal").label("__meta_eq_a", "v").label("__meta_eq_b", "dropequal;v")
            .uncounted().up("")
            .phase(text("tr 1\n")),
        case("tr_keepequal", TargetRelabel, "keepequal keeps a target whose labels are equal")
            .label("rl", "keepequal").label("__meta_ke_a", "s").label("__meta_ke_b", "s")
            .phase(text("tr 1\n")),
        case("tr_noaddr", TargetRelabel, "a target with no address after relabeling is dropped")
            .label("rl", "noaddr").uncounted().up("")
            .phase(text("tr 1\n")),
        case("tr_instance", TargetRelabel, "instance set by relabeling")
            .label("rl", "instance").alias("tr_instance_relabeled")
            .phase(text("tr 1\n")),
        case("tr_https", TargetRelabel, "__scheme__ https against an HTTP server: the TLS error")
            .label("rl", "https").uncounted().up("0")
            .phase(text("tr 1\n")),
        case("tr_hashmod", TargetRelabel, "hashmod on a target label")
            .label("rl", "hash")
            .phase(text("tr 1\n")),
        case("tr_case", TargetRelabel, "lowercase/uppercase on target labels")
            .label("rl", "case").label("__meta_mixed", "AbC")
            .phase(text("tr 1\n")),
    ]
}

fn limits() -> Vec<Case> {
    let samples = |n: usize| (0..n).map(|i| format!("s{{i=\"{i}\"}} {i}\n")).collect::<String>();
    vec![
        case("sl_under", SampleLimit, "3 samples, limit 4")
            .phase(text(&samples(3))),
        case("sl_exact", SampleLimit, "4 samples, limit 4")
            .phase(text(&samples(4))),
        case("sl_over", SampleLimit, "5 samples over limit 4: nothing stored, up 0, report series")
            .phase(text(&samples(5))).up("0"),
        case("sl_relabel", SampleLimit, "6 samples, 3 dropped by metric relabeling: the limit counts after")
            .phase(text(&format!("{}sl_dropped_a 1\nsl_dropped_b 1\nsl_dropped_c 1\n", samples(3)))),
        case("sl_recover", SampleLimit, "over the limit, then under: up 0 then 1")
            .repeats(2)
            .phase(text(&samples(6)))
            .phase(text(&samples(2))).up("0 1"),
        case("sl_ok_then_over", SampleLimit, "under, then over the limit: stale markers for the stored series")
            .repeats(2)
            .phase(text(&samples(2)))
            .phase(text(&samples(6))).up("1 0"),
        case("ll_ok", LabelLimit, "5 labels (with __name__, job, instance), limit 5")
            .phase(text("m{a=\"1\",b=\"2\"} 1\n")),
        case("ll_over", LabelLimit, "6 labels, limit 5: the scrape fails")
            .phase(text("ok 1\nm{a=\"1\",b=\"2\",c=\"3\"} 1\n")).up("0"),
        case("lnl_ok", NameLenLimit, "a label name of 8 bytes, limit 8")
            .phase(text("m{abcdefgh=\"1\"} 1\n")),
        case("lnl_over", NameLenLimit, "a label name of 9 bytes, limit 8: the scrape fails")
            .phase(text("m{abcdefghi=\"1\"} 1\n")).up("0"),
        case("lvl_ok", ValueLenLimit, "a label value of 8 bytes, limit 8")
            .phase(text("m{a=\"12345678\"} 1\n")),
        case("lvl_over", ValueLenLimit, "a label value of 9 bytes, limit 8: the scrape fails")
            .phase(text("m{a=\"123456789\"} 1\n")).up("0"),
        case("lvl_name", ValueLenLimit, "a 9-byte metric name: does __name__ count as a value?")
            .phase(text("abcdefghi 1\n")),
        case("lvl_utf8", ValueLenLimit, "8 runes but 16 bytes: the limit counts bytes")
            .phase(text("m{a=\"ääääääää\"} 1\n")),
        case("bs_under", BodySize, "a 500-byte body under body_size_limit 1KB")
            .phase(text(&format!("m{{a=\"{}\"}} 1\n", "x".repeat(480)))),
        case("bs_over", BodySize, "a 2000-byte body over 1KB: body size limit exceeded")
            .phase(text(&format!("m{{a=\"{}\"}} 1\n", "x".repeat(1980)))).up("0"),
        case("bs_exact", BodySize, "a body of exactly 1024 bytes")
            .phase(text(&format!("m{{a=\"{}\"}} 1\n", "x".repeat(1024 - 11)))).up("0"),
        case("bs_gzip_over", BodySize, "gzip: the limit applies to the decompressed body")
            .phase(text(&format!("m{{a=\"{}\"}} 1\n", "x".repeat(4000))).gzip()).up("0"),
        case("tl_a", TargetLimit, "target_limit 1 with 2 targets: every target fails, never scraped")
            .uncounted().up("0")
            .phase(text("m 1\n")),
        case("tl_b", TargetLimit, "the second target of the over-limit job")
            .uncounted().up("0")
            .phase(text("m 1\n")),
    ]
}

fn failures() -> Vec<Case> {
    vec![
        case("f_500", Plain, "HTTP 500: up 0, report series, lastError")
            .phase(text("m 1\n").status(500)).up("0"),
        case("f_404", Plain, "HTTP 404")
            .phase(text("m 1\n").status(404)).up("0"),
        case("f_202", Plain, "a 2xx other than 200 is a failed scrape in Prometheus")
            .phase(text("m 1\n").status(202)).up("0"),
        case("f_timeout", Plain, "a response slower than scrape_timeout: context deadline exceeded")
            .phase(text("m 1\n").delay_ms(1500)).up("0"),
        case("f_refused", Plain, "connection refused")
            .address(Address::Closed).up("0")
            .phase(text("m 1\n")),
        case("f_redirect", Plain, "a 302 is followed")
            .phase(text("").status(302).location("/final/f_redirect"))
            .redirect_to_final(text("redirected 1\n")),
        case("f_gzip", Plain, "a gzip-encoded body")
            .phase(text("gz{a=\"b\"} 1\ngz2 2\n").gzip()),
        case("f_parse_mid", Plain, "a parse error mid-body: none of the body is stored")
            .phase(text("a 1\nb 2\nc{ 3\nd 4\n")).up("0"),
        case("f_atomic_end", Plain, "an error on the last line: none of the 100 samples before it are stored")
            .phase(gen_text(|_| {
                let mut s: String = (0..100).map(|i| format!("at{{i=\"{i}\"}} {i}\n")).collect();
                s.push_str("at_bad 1 2 3\n");
                s.into_bytes()
            })).up("0"),
        case("f_om_atomic", Plain, "an OM body with a good head and no # EOF: none stored")
            .phase(om("# TYPE fo counter\nfo_total 1\nfo2 2\n")).up("0"),
    ]
}

fn staleness() -> Vec<Case> {
    vec![
        case("s_vanish", Plain, "a series missing from a successful scrape gets a stale marker")
            .repeats(2)
            .phase(text("a 1\nb 2\n"))
            .phase(text("a 1\n")),
        case("s_reappear", Plain, "a series that vanishes and comes back")
            .repeats(2)
            .phase(text("a 1\nb 1\n"))
            .phase(text("b 1\n"))
            .phase(text("a 2\nb 1\n")),
        case("s_value_change", Plain, "values change between scrapes")
            .repeats(2)
            .phase(text("a 1\n"))
            .phase(text("a 2\n"))
            .phase(text("a 3\n")),
        case("s_fail_after_ok", Plain, "a failing scrape after a success: stale markers, up 0")
            .repeats(2)
            .phase(text("a 1\nb 2\n"))
            .phase(text("").status(500)).up("1 0"),
        case("s_ok_after_fail", Plain, "a success after a failure")
            .repeats(2)
            .phase(text("").status(500))
            .phase(text("a 1\n")).up("0 1"),
        case("s_parse_fail_after_ok", Plain, "a parse error after a success: stale markers")
            .repeats(2)
            .phase(text("a 1\n"))
            .phase(text("a 1\nb{ 2\n")).up("1 0"),
        case("s_ts_vanish", Plain, "a vanished series with explicit timestamps gets no stale marker (2.42)")
            .repeats(2)
            .phase(gen_text(|c| format!("e 1 {}\nn 1\n", c.now_ms - 1000).into_bytes()))
            .phase(text("n 1\n")),
        case("s_ts_fail", Plain, "a failed scrape after explicit-timestamp series")
            .repeats(2)
            .phase(gen_text(|c| format!("e 1 {}\nn 1\n", c.now_ms - 1000).into_bytes()))
            .phase(text("").status(500)).up("1 0"),
        case("s_empty_after_ok", Plain, "an empty successful body after samples: stale markers, up stays 1")
            .repeats(2)
            .phase(text("a 1\n"))
            .phase(text("")),
        case("fsd_stay", FileSd, "a file SD target that stays")
            .phase(text("f 1\n")),
        case("fsd_removed", FileSd, "a target removed from discovery: end-of-run stale markers")
            .remove_after(3).up("1 _")
            .phase(text("f 1\ng 2\n")),
    ]
}

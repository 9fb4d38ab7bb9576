//! Scrape-semantics cases: labels, metric and target relabeling, limits,
//! failures and staleness.

use crate::differential::cases::{case, gen_text, om, text, Address, Case};
use crate::differential::jobs::Job::*;

/// Prometheus 2.42 means a failed scrape to mark every series stale
/// (`scrapeAndReport` appends an empty scrape "to trigger stale markers"),
/// but after a parse error or a sample-limit breach its cache already counts
/// the series read before the failure as seen, so only the others go stale.
/// scrapegrid marks every series of a failed scrape stale, as Prometheus does
/// for a failed request and as the issue asks.
const FAILED_APPEND_STALENESS: &str =
    "every series of a failed scrape goes stale, not only those after the error";

pub(super) fn labels() -> Vec<Case> {
    vec![
        case(
            "l_exported",
            Plain,
            "honor_labels false: exposed job/instance become exported_*",
        )
        .phase(text("m{job=\"x\",instance=\"y\",a=\"1\"} 1\n")),
        case(
            "l_exported_twice",
            Plain,
            "a taken exported_job becomes exported_exported_job",
        )
        .phase(text("m{job=\"x\",exported_job=\"y\"} 1\n")),
        case(
            "l_exported_thrice",
            Plain,
            "renaming repeats as often as needed",
        )
        .phase(text(
            "m{job=\"x\",exported_job=\"y\",exported_exported_job=\"z\"} 1\n",
        )),
        case(
            "l_static_conflict",
            Plain,
            "a static target label conflicts with an exposed label",
        )
        .label("team", "static")
        .phase(text("m{team=\"exposed\"} 1\nn 2\n")),
        case(
            "l_empty_value",
            Plain,
            "an empty label value is absent: no conflict, no label",
        )
        .phase(text("m{a=\"\"} 1\nn{job=\"\"} 2\n")),
        case("l_empty_dup", Plain, "m{a=\"\"} and m are the same series")
            .phase(text("m{a=\"\"} 1\nm 2\n")),
        case(
            "h_keep",
            Honor,
            "honor_labels true: exposed job and static-conflicting labels win",
        )
        .label("team", "static")
        .phase(text("m{job=\"exposed_job\",team=\"x\"} 1\nn 2\n")),
        case(
            "h_instance",
            Honor,
            "honor_labels true: exposed instance wins",
        )
        .phase(text("m{instance=\"h_instance_exposed\"} 1\n")),
        case(
            "h_empty",
            Honor,
            "honor_labels true: an empty exposed job is absent, the target's is set",
        )
        .phase(text("m{job=\"\"} 1\n")),
        case(
            "nt_old",
            NoTime,
            "honor_timestamps false: a timestamp far in the past is ignored",
        )
        .phase(text("m 1 1000\n")),
        case(
            "nt_vanish",
            NoTime,
            "honor_timestamps false: a vanished timestamped series gets a stale marker",
        )
        .repeats(2)
        .phase(gen_text(|c| {
            format!("m 1 {}\nkeep 1\n", c.now_ms - 1000).into_bytes()
        }))
        .phase(text("keep 1\n")),
        case(
            "t_ts_old",
            Plain,
            "an explicit timestamp far in the past is out of bounds: skipped, scrape ok",
        )
        .phase(text("old 1 1000\nfresh 2\n")),
    ]
}

pub(super) fn metric_relabel() -> Vec<Case> {
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
        case("mr_collide", MetricRelabel, "labeldrop makes two series one: the first sample wins")
            .phase(text("mr_collide{ld_a=\"1\"} 1\nmr_collide{ld_a=\"2\"} 2\n")),
        case("mr_noname", MetricRelabel, "relabeling deletes __name__: the scrape fails")
            .phase(text("ok 1\nmr_noname 1\n")).up("0"),
        case("mr_badtarget", MetricRelabel, "a target_label expanding to an invalid name is not set")
            .phase(text("mr_badtarget{t=\"1bad\"} 1\nmr_badtarget{t=\"good\"} 2\n")),
        case("mr_rename", MetricRelabel, "__name__ as a replace target")
            .phase(text("mr_rename_me 1\n")),
    ]
}

pub(super) fn target_relabel() -> Vec<Case> {
    vec![
        case(
            "tr_address",
            TargetRelabel,
            "__address__ from a __meta label; instance defaults to the final address",
        )
        .address(Address::Literal("wrong.invalid:1"))
        .no_static_instance()
        .label("rl", "address")
        .label("__meta_real_address", "FIXTURE")
        .phase(text("tr 1\n")),
        case(
            "tr_path",
            TargetRelabel,
            "__metrics_path__ rewritten by relabeling",
        )
        .label("rl", "path")
        .label("__metrics_path__", "/case/wrong")
        .phase(text("tr 1\n")),
        case(
            "tr_path_escape",
            TargetRelabel,
            "a __metrics_path__ with spaces, ?, #, %, quotes, brackets and UTF-8: \
             escaped as Go's url.URL escapes a path (scrapeUrl and the path on the wire)",
        )
        .label("rl", "pathesc")
        .phase(gen_text(|c| {
            format!("tr_path{{p=\"{}\"}} 1\n", c.path.replace('\\', "\\\\").replace('"', "\\\""))
                .into_bytes()
        })),
        case(
            "tr_path_empty",
            TargetRelabel,
            "__metrics_path__ relabeled to empty: the URL has no path (a 404 from the fixture's root)",
        )
        .label("rl", "pathempty")
        .phase(text("tr 1\n"))
        .uncounted()
        .up("0"),
        case(
            "tr_scheme_upper",
            TargetRelabel,
            "__scheme__ HTTP in capitals: kept so in scrapeUrl, scraped as http",
        )
        .label("rl", "schemeupper")
        .phase(text("tr 1\n")),
        case(
            "tr_scheme_empty",
            TargetRelabel,
            "__scheme__ relabeled to empty: a URL without a scheme, refused as Go's client refuses it",
        )
        .label("rl", "schemeempty")
        .phase(text("tr 1\n"))
        .uncounted()
        .up("0"),
        case(
            "tr_path_no_slash",
            TargetRelabel,
            "a __metrics_path__ without its leading slash gets one",
        )
        .label("rl", "nopathslash")
        .phase(text("tr 1\n")),
        case(
            "tr_param_escape",
            TargetRelabel,
            "a __param_<name> value with UTF-8 and reserved characters, query-escaped (echoed query)",
        )
        .label("rl", "paramesc")
        .phase(gen_text(|c| {
            format!("tr_query{{q=\"{}\"}} 1\n", c.query).into_bytes()
        })),
        case(
            "tr_param",
            TargetRelabel,
            "job params plus __param_<name> from relabeling, URL-encoded (echoed query)",
        )
        .label("rl", "param")
        .phase(gen_text(|c| {
            format!("tr_query{{q=\"{}\"}} 1\n", c.query).into_bytes()
        })),
        case(
            "tr_job_param",
            TargetRelabel,
            "a job-level param reaches the URL (echoed query)",
        )
        .label("rl", "jobparam")
        .phase(gen_text(|c| {
            format!("tr_query{{q=\"{}\"}} 1\n", c.query).into_bytes()
        })),
        case(
            "tr_interval",
            TargetRelabel,
            "__scrape_interval__ / __scrape_timeout__ from relabeling",
        )
        .label("rl", "interval")
        .phase(text("tr 1\n")),
        case(
            "tr_bad_timeout",
            TargetRelabel,
            "a timeout above the interval makes the target invalid",
        )
        .label("rl", "badtimeout")
        .uncounted()
        .up("")
        .phase(text("tr 1\n")),
        case(
            "tr_bad_interval",
            TargetRelabel,
            "an unparsable __scrape_interval__ makes the target invalid",
        )
        .label("rl", "badinterval")
        .uncounted()
        .up("")
        .phase(text("tr 1\n")),
        case(
            "tr_meta_tmp",
            TargetRelabel,
            "__meta_* and __tmp* are usable in rules and dropped after",
        )
        .label("rl", "meta")
        .label("__meta_color", "blue")
        .phase(text("tr 1\n")),
        case(
            "tr_labelmap",
            TargetRelabel,
            "labelmap of __meta_map_* onto target labels",
        )
        .label("rl", "labelmap")
        .label("__meta_map_team", "core")
        .phase(text("tr 1\n")),
        case(
            "tr_drop",
            TargetRelabel,
            "a dropped target is listed under droppedTargets",
        )
        .label("rl", "drop")
        .uncounted()
        .up("")
        .phase(text("tr 1\n")),
        case(
            "tr_keep_no",
            TargetRelabel,
            "keep drops a target whose label does not match",
        )
        .label("rl", "keep")
        .label("__meta_keep", "no")
        .uncounted()
        .up("")
        .phase(text("tr 1\n")),
        case("tr_dropequal", TargetRelabel, "dropequal on target labels")
            .label("rl", "dropequal")
            .label("__meta_eq_a", "v")
            .label("__meta_eq_b", "dropequal;v")
            .uncounted()
            .up("")
            .phase(text("tr 1\n")),
        case(
            "tr_keepequal",
            TargetRelabel,
            "keepequal keeps a target whose labels are equal",
        )
        .label("rl", "keepequal")
        .label("__meta_ke_a", "s")
        .label("__meta_ke_b", "s")
        .phase(text("tr 1\n")),
        case(
            "tr_noaddr",
            TargetRelabel,
            "a target with no address after relabeling is dropped",
        )
        .label("rl", "noaddr")
        .uncounted()
        .up("")
        .phase(text("tr 1\n")),
        case("tr_instance", TargetRelabel, "instance set by relabeling")
            .label("rl", "instance")
            .alias("tr_instance_relabeled")
            .phase(text("tr 1\n")),
        case(
            "tr_https",
            TargetRelabel,
            "__scheme__ https against an HTTP server: the TLS error",
        )
        .label("rl", "https")
        .uncounted()
        .up("0")
        .phase(text("tr 1\n")),
        case("tr_hashmod", TargetRelabel, "hashmod on a target label")
            .label("rl", "hash")
            .phase(text("tr 1\n")),
        case(
            "tr_case",
            TargetRelabel,
            "lowercase/uppercase on target labels",
        )
        .label("rl", "case")
        .label("__meta_mixed", "AbC")
        .phase(text("tr 1\n")),
    ]
}

pub(super) fn limits() -> Vec<Case> {
    let samples = |n: usize| {
        (0..n)
            .map(|i| format!("s{{i=\"{i}\"}} {i}\n"))
            .collect::<String>()
    };
    vec![
        case("sl_under", SampleLimit, "3 samples, limit 4").phase(text(&samples(3))),
        case("sl_exact", SampleLimit, "4 samples, limit 4").phase(text(&samples(4))),
        case(
            "sl_over",
            SampleLimit,
            "5 samples over limit 4: nothing stored, up 0, report series",
        )
        .phase(text(&samples(5)))
        .up("0"),
        case(
            "sl_relabel",
            SampleLimit,
            "6 samples, 3 dropped by metric relabeling: the limit counts after",
        )
        .phase(text(&format!(
            "{}sl_dropped_a 1\nsl_dropped_b 1\nsl_dropped_c 1\n",
            samples(3)
        ))),
        case(
            "sl_recover",
            SampleLimit,
            "over the limit, then under: up 0 then 1",
        )
        .repeats(2)
        .phase(text(&samples(6)))
        .phase(text(&samples(2)))
        .up("0 1"),
        case(
            "sl_ok_then_over",
            SampleLimit,
            "under, then over the limit: stale markers for the stored series",
        )
        .repeats(2)
        .phase(text(&samples(2)))
        .phase(text(&samples(6)))
        .up("1 0")
        .deviates(
            FAILED_APPEND_STALENESS,
            &[
                r#"series s{i="0", instance="{case}", job="slimit"}: prometheus [0] scrapegrid [0 _]"#,
                r#"series s{i="1", instance="{case}", job="slimit"}: prometheus [1] scrapegrid [1 _]"#,
            ],
        ),
        case(
            "ll_ok",
            LabelLimit,
            "5 labels (with __name__, job, instance), limit 5",
        )
        .phase(text("m{a=\"1\",b=\"2\"} 1\n")),
        case("ll_over", LabelLimit, "6 labels, limit 5: the scrape fails")
            .phase(text("ok 1\nm{a=\"1\",b=\"2\",c=\"3\"} 1\n"))
            .up("0"),
        case("lnl_ok", NameLenLimit, "a label name of 8 bytes, limit 8")
            .phase(text("m{abcdefgh=\"1\"} 1\n")),
        case(
            "lnl_over",
            NameLenLimit,
            "a label name of 9 bytes, limit 8: the scrape fails",
        )
        .phase(text("m{abcdefghi=\"1\"} 1\n"))
        .up("0"),
        case("lvl_ok", ValueLenLimit, "a label value of 8 bytes, limit 8")
            .phase(text("m{a=\"12345678\"} 1\n")),
        case(
            "lvl_over",
            ValueLenLimit,
            "a label value of 9 bytes, limit 8: the scrape fails",
        )
        .phase(text("m{a=\"123456789\"} 1\n"))
        .up("0"),
        case(
            "lvl_name",
            ValueLenLimit,
            "the metric name counts as a label value: a 9-byte name fails",
        )
        .phase(text("abcdefghi 1\n"))
        .up("0"),
        case(
            "lvl_utf8",
            ValueLenLimit,
            "8 runes but 16 bytes: the limit counts bytes, the scrape fails",
        )
        .phase(text("m{a=\"ääääääää\"} 1\n"))
        .up("0"),
        case(
            "bs_under",
            BodySize,
            "a 500-byte body under body_size_limit 1KB",
        )
        .phase(text(&format!("m{{a=\"{}\"}} 1\n", "x".repeat(480)))),
        case(
            "bs_over",
            BodySize,
            "a 2000-byte body over 1KB: body size limit exceeded",
        )
        .phase(text(&format!("m{{a=\"{}\"}} 1\n", "x".repeat(1980))))
        .up("0"),
        case("bs_exact", BodySize, "a body of exactly 1024 bytes")
            .phase(text(&format!("m{{a=\"{}\"}} 1\n", "x".repeat(1024 - 10))))
            .up("0"),
        case(
            "bs_gzip_over",
            BodySize,
            "gzip: the limit applies to the decompressed body",
        )
        .phase(text(&format!("m{{a=\"{}\"}} 1\n", "x".repeat(4000))).gzip())
        .up("0"),
        case(
            "tl_a",
            TargetLimit,
            "target_limit 1 with 2 targets: every target fails, never scraped",
        )
        .uncounted()
        .up("0")
        .phase(text("m 1\n")),
        case(
            "tl_b",
            TargetLimit,
            "the second target of the over-limit job",
        )
        .uncounted()
        .up("0")
        .phase(text("m 1\n")),
    ]
}

pub(super) fn failures() -> Vec<Case> {
    vec![
        case("f_500", Plain, "HTTP 500: up 0, report series, lastError")
            .phase(text("m 1\n").status(500))
            .up("0"),
        case("f_404", Plain, "HTTP 404")
            .phase(text("m 1\n").status(404))
            .up("0"),
        case(
            "f_202",
            Plain,
            "a 2xx other than 200 is a failed scrape in Prometheus",
        )
        .phase(text("m 1\n").status(202))
        .up("0"),
        case(
            "f_timeout",
            Plain,
            "a response slower than scrape_timeout: context deadline exceeded",
        )
        .phase(text("m 1\n").delay_ms(1500))
        .up("0"),
        case("f_refused", Plain, "connection refused")
            .address(Address::Closed)
            .up("0")
            .phase(text("m 1\n")),
        case("f_redirect", Plain, "a 302 is followed")
            .phase(text("").status(302).location("/final/f_redirect"))
            .redirect_to_final(text("redirected 1\n")),
        case(
            "f_bad_gzip",
            Plain,
            "Content-Encoding gzip on a plain body: a decompression error",
        )
        .phase(text("m 1\n").header("content-encoding", "gzip"))
        .up("0"),
        case("f_gzip", Plain, "a gzip-encoded body").phase(text("gz{a=\"b\"} 1\ngz2 2\n").gzip()),
        case(
            "f_parse_mid",
            Plain,
            "a parse error mid-body: none of the body is stored",
        )
        .phase(text("a 1\nb 2\nc{ 3\nd 4\n"))
        .up("0"),
        case(
            "f_atomic_end",
            Plain,
            "an error on the last line: none of the 100 samples before it are stored",
        )
        .phase(gen_text(|_| {
            let mut s: String = (0..100).map(|i| format!("at{{i=\"{i}\"}} {i}\n")).collect();
            s.push_str("at_bad 1 2 3\n");
            s.into_bytes()
        }))
        .up("0"),
        case(
            "f_om_atomic",
            Plain,
            "an OM body with a good head and no # EOF: none stored",
        )
        .phase(om("# TYPE fo counter\nfo_total 1\nfo2 2\n"))
        .up("0"),
    ]
}

pub(super) fn staleness() -> Vec<Case> {
    vec![
        case(
            "s_vanish",
            Plain,
            "a series missing from a successful scrape gets a stale marker",
        )
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
        case(
            "s_fail_after_ok",
            Plain,
            "a failing scrape after a success: stale markers, up 0",
        )
        .repeats(2)
        .phase(text("a 1\nb 2\n"))
        .phase(text("").status(500))
        .up("1 0"),
        case("s_ok_after_fail", Plain, "a success after a failure")
            .repeats(2)
            .phase(text("").status(500))
            .phase(text("a 1\n"))
            .up("0 1"),
        case(
            "s_parse_fail_after_ok",
            Plain,
            "a parse error after a success: stale markers",
        )
        .repeats(2)
        .phase(text("a 1\n"))
        .phase(text("a 1\nb{ 2\n"))
        .up("1 0")
        .deviates(
            FAILED_APPEND_STALENESS,
            &[r#"series a{instance="{case}", job="plain"}: prometheus [1] scrapegrid [1 _]"#],
        ),
        case(
            "s_parse_fail_partial",
            Plain,
            "after a parse error, 2.42 marks stale only the series not seen before the error",
        )
        .repeats(2)
        .phase(text("a 1\nb 2\n"))
        .phase(text("a 1\nc{ 2\n"))
        .up("1 0")
        .deviates(
            FAILED_APPEND_STALENESS,
            &[r#"series a{instance="{case}", job="plain"}: prometheus [1] scrapegrid [1 _]"#],
        ),
        case(
            "s_ts_out_of_order",
            Plain,
            "an explicit timestamp older than the stored one is dropped, the scrape succeeds",
        )
        .repeats(2)
        .phase(gen_text(|c| {
            format!("o 1 {}\n", c.now_ms - 1000).into_bytes()
        }))
        .phase(gen_text(|c| {
            format!("o 2 {}\n", c.now_ms - 60_000).into_bytes()
        })),
        case(
            "s_ts_vanish",
            Plain,
            "a vanished series with explicit timestamps gets no stale marker (2.42)",
        )
        .repeats(2)
        .phase(gen_text(|c| {
            format!("e 1 {}\nn 1\n", c.now_ms - 1000).into_bytes()
        }))
        .phase(text("n 1\n")),
        case(
            "s_ts_fail",
            Plain,
            "a failed scrape after explicit-timestamp series",
        )
        .repeats(2)
        .phase(gen_text(|c| {
            format!("e 1 {}\nn 1\n", c.now_ms - 1000).into_bytes()
        }))
        .phase(text("").status(500))
        .up("1 0"),
        case(
            "s_empty_after_ok",
            Plain,
            "an empty successful body after samples: stale markers, up stays 1",
        )
        .repeats(2)
        .phase(text("a 1\n"))
        .phase(text("")),
        case("fsd_stay", FileSd, "a file SD target that stays").phase(text("f 1\n")),
        case(
            "fsd_removed",
            FileSd,
            "a target removed from discovery: end-of-run stale markers",
        )
        .remove_after(3)
        .up("1 _")
        .phase(text("f 1\ng 2\n")),
    ]
}

//! Target labels onto scraped labels, as Prometheus's `mutateSampleLabels`:
//! with `honor_labels` the scraped value wins, even an empty one (the label
//! is then absent); without it the target's value wins and a non-empty
//! scraped one is kept as `exported_<name>` (prefixed again while that name
//! is taken too).

use scrapegrid_common::{Labels, LabelsBuilder};

/// Returns the scraped labels with the target labels attached. `series` is
/// the series as scraped (`name{a="",b="c"}`): with `honor_labels`, a label
/// it carries with an empty value keeps the target's label off.
pub fn attach_target_labels(
    scraped: &Labels,
    series: &str,
    target: &Labels,
    honor_labels: bool,
) -> LabelsBuilder {
    let mut lb = scraped.builder();
    if honor_labels {
        let empty = empty_label_names(series);
        for l in target.iter() {
            if scraped.get(&l.name).is_none() && !empty.contains(&l.name.as_str()) {
                lb.set(l.name.clone(), l.value.clone());
            }
        }
        return lb;
    }
    let mut conflicts = Vec::new();
    for l in target.iter() {
        if let Some(v) = scraped.get(&l.name) {
            conflicts.push((l.name.clone(), v.to_string()));
        }
        lb.set(l.name.clone(), l.value.clone());
    }
    for (name, value) in &conflicts {
        let mut new_name = name.clone();
        loop {
            new_name = format!("exported_{new_name}");
            let taken = scraped.get(&new_name).is_some()
                || target.get(&new_name).is_some()
                || conflicts.iter().any(|(n, _)| *n == new_name);
            if !taken {
                lb.set(new_name, value.clone());
                break;
            }
        }
    }
    lb
}

/// Returns the names of the labels a parsed series text gives an empty value
/// (`a{x="",y="1"}` gives `x`); the text is known to be well formed.
fn empty_label_names(series: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let Some(open) = series.find('{') else {
        return out;
    };
    let b = series.as_bytes();
    let mut i = open + 1;
    while i < b.len() {
        // Name: up to '='; blanks and commas around it are skipped.
        let start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b'}' {
            i += 1;
        }
        if i >= b.len() || b[i] == b'}' {
            break;
        }
        let name = series[start..i].trim_matches(|c: char| c == ',' || c == ' ' || c == '\t');
        // Value: from the opening quote to the closing one, skipping escapes.
        let Some(q) = series[i..].find('"') else {
            break;
        };
        i += q + 1;
        let value_start = i;
        while i < b.len() && b[i] != b'"' {
            i += if b[i] == b'\\' { 2 } else { 1 };
        }
        if i == value_start {
            out.push(name);
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn target_wins_and_conflicts_are_exported() {
        let scraped = l(&[("__name__", "m"), ("job", "inner"), ("exported_job", "x")]);
        let target = l(&[("job", "outer"), ("instance", "h:1")]);
        let got = attach_target_labels(&scraped, "m", &target, false).labels();
        assert_eq!(
            got.to_string(),
            r#"{__name__="m", exported_exported_job="inner", exported_job="x", instance="h:1", job="outer"}"#
        );
    }

    #[test]
    fn honor_labels_keeps_scraped_values() {
        let scraped = l(&[("__name__", "m"), ("job", "inner")]);
        let target = l(&[("job", "outer"), ("instance", "h:1")]);
        let got = attach_target_labels(&scraped, "m", &target, true).labels();
        assert_eq!(
            got.to_string(),
            r#"{__name__="m", instance="h:1", job="inner"}"#
        );
    }

    #[test]
    fn honor_labels_keeps_an_empty_scraped_value_as_absent() {
        let scraped = l(&[("__name__", "m")]);
        let target = l(&[("job", "outer"), ("instance", "h:1")]);
        let series = r#"m{ job = "" , x="a\"b"}"#;
        let got = attach_target_labels(&scraped, series, &target, true).labels();
        assert_eq!(got.to_string(), r#"{__name__="m", instance="h:1"}"#);
        let got = attach_target_labels(&scraped, series, &target, false).labels();
        assert_eq!(
            got.to_string(),
            r#"{__name__="m", instance="h:1", job="outer"}"#
        );
    }

    #[test]
    fn empty_label_names_are_found_in_the_series_text() {
        assert_eq!(
            empty_label_names(r#"m{a="",b="x",c="",d="\"",e=""}"#),
            ["a", "c", "e"]
        );
        assert_eq!(empty_label_names("m"), Vec::<&str>::new());
        assert_eq!(empty_label_names(r#"m{a="1",}"#), Vec::<&str>::new());
    }
}

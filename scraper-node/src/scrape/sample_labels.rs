//! Target labels onto scraped labels, as Prometheus's `mutateSampleLabels`:
//! with `honor_labels` the scraped value wins, even an empty one (the label
//! is then absent); without it the target's value wins and a non-empty
//! scraped one is kept as `exported_<name>` (prefixed again while that name
//! is taken too).

use scrapegrid_common::{Labels, LabelsBuilder};

use crate::textparse::ScrapedLabels;

/// Returns the scraped labels with the target labels attached. With
/// `honor_labels`, a label the series carries with an empty value keeps the
/// target's label off.
pub fn attach_target_labels(
    read: &ScrapedLabels,
    target: &Labels,
    honor_labels: bool,
) -> LabelsBuilder {
    let scraped = &read.labels;
    let mut lb = scraped.builder();
    if honor_labels {
        for l in target.iter() {
            if scraped.get(&l.name).is_none() && !read.empty.contains(&l.name) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::textparse::Sample;

    /// Reads `series` as a scrape does on a cache miss.
    fn read(series: &str) -> ScrapedLabels {
        Sample {
            series: series.into(),
            value: 1.0,
            timestamp_ms: None,
            exemplar: None,
        }
        .scraped_labels()
    }

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn target_wins_and_conflicts_are_exported() {
        let scraped = read(r#"m{job="inner",exported_job="x"}"#);
        let target = l(&[("job", "outer"), ("instance", "h:1")]);
        let got = attach_target_labels(&scraped, &target, false).labels();
        assert_eq!(
            got.to_string(),
            r#"{__name__="m", exported_exported_job="inner", exported_job="x", instance="h:1", job="outer"}"#
        );
    }

    #[test]
    fn honor_labels_keeps_scraped_values() {
        let scraped = read(r#"m{job="inner"}"#);
        let target = l(&[("job", "outer"), ("instance", "h:1")]);
        let got = attach_target_labels(&scraped, &target, true).labels();
        assert_eq!(
            got.to_string(),
            r#"{__name__="m", instance="h:1", job="inner"}"#
        );
    }

    #[test]
    fn honor_labels_keeps_an_empty_scraped_value_as_absent() {
        let scraped = read(r#"m{ job = "" , x="a\"b"}"#);
        assert_eq!(scraped.empty, ["job"]);
        let target = l(&[("job", "outer"), ("instance", "h:1")]);
        let got = attach_target_labels(&scraped, &target, true).labels();
        assert_eq!(
            got.to_string(),
            r#"{__name__="m", instance="h:1", x="a\"b"}"#
        );
        let got = attach_target_labels(&scraped, &target, false).labels();
        assert_eq!(
            got.to_string(),
            r#"{__name__="m", instance="h:1", job="outer", x="a\"b"}"#
        );
    }

    #[test]
    fn empty_label_names_are_read_from_the_series() {
        assert_eq!(
            read(r#"m{a="",b="x",c="",d="\"",e=""}"#).empty,
            ["a", "c", "e"]
        );
        assert!(read("m").empty.is_empty());
        assert!(read(r#"m{a="1",}"#).empty.is_empty());
    }
}

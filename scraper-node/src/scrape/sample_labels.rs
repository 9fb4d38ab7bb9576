//! Target labels onto scraped labels, as Prometheus's `mutateSampleLabels`:
//! with `honor_labels` the scraped value wins; without it the target's value
//! wins and the scraped one is kept as `exported_<name>` (prefixed again
//! while that name is taken too).

use scrapegrid_common::{Labels, LabelsBuilder};

/// Returns the scraped labels with the target labels attached.
pub fn attach_target_labels(
    scraped: &Labels,
    target: &Labels,
    honor_labels: bool,
) -> LabelsBuilder {
    let mut lb = scraped.builder();
    if honor_labels {
        for l in target.iter() {
            if scraped.get(&l.name).is_none() {
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

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn target_wins_and_conflicts_are_exported() {
        let scraped = l(&[("__name__", "m"), ("job", "inner"), ("exported_job", "x")]);
        let target = l(&[("job", "outer"), ("instance", "h:1")]);
        let got = attach_target_labels(&scraped, &target, false).labels();
        assert_eq!(
            got.to_string(),
            r#"{__name__="m", exported_exported_job="inner", exported_job="x", instance="h:1", job="outer"}"#
        );
    }

    #[test]
    fn honor_labels_keeps_scraped_values() {
        let scraped = l(&[("__name__", "m"), ("job", "inner")]);
        let target = l(&[("job", "outer"), ("instance", "h:1")]);
        let got = attach_target_labels(&scraped, &target, true).labels();
        assert_eq!(
            got.to_string(),
            r#"{__name__="m", instance="h:1", job="inner"}"#
        );
    }
}

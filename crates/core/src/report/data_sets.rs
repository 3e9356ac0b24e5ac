//! Which data set a leaderboard row was evaluated on, and which data set is the report's
//! main one. Rows of different data sets (a pretraining stage beside its fine-tuned jobs)
//! are never compared; the notes under the table describe the main data set.

use super::Group;
use std::collections::BTreeMap;

/// The group's `data` field `key` (`dataset`, `root`) as JSON text, if its config has one.
fn data_field(group: &Group, key: &str) -> Option<String> {
    let config: serde_json::Value =
        serde_json::from_str(&group.runs[0].config_json).unwrap_or_default();
    config
        .pointer(&format!("/data/{key}"))
        .map(|v| v.to_string())
}

/// The data set a group was evaluated on: `data.dataset` and `data.root` of its config.
fn data_set(group: &Group) -> String {
    format!(
        "{:?} {:?}",
        data_field(group, "dataset"),
        data_field(group, "root")
    )
}

/// The group's `data.dataset` as written (`dme`), empty when its config has none.
pub(super) fn dataset_name(group: &Group) -> String {
    data_field(group, "dataset")
        .map(|json| serde_json::from_str::<String>(&json).unwrap_or(json))
        .unwrap_or_default()
}

/// The groups (indices into `groups`) of each data set, each in the given (rank) order;
/// the main data set first: the one with the most rows outside stages, then the most rows,
/// then the one whose first row ranks higher. A pretraining stage is one row beside the
/// many it pretrains, so its data set is not the main one.
pub(super) fn families(groups: &[Group]) -> Vec<Vec<usize>> {
    let mut by_set: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        by_set.entry(data_set(g)).or_default().push(i);
    }
    let mut families: Vec<Vec<usize>> = by_set.into_values().collect();
    let outside_stages = |f: &Vec<usize>| {
        let n = f.iter().filter(|&&i| groups[i].runs[0].stage.is_none());
        n.count()
    };
    families.sort_by_key(|f| {
        (
            std::cmp::Reverse(outside_stages(f)),
            std::cmp::Reverse(f.len()),
            f[0],
        )
    });
    families
}

/// The names of the group's foreground classes (every class but 0), as its data set calls
/// them ("fluid" for DME, "vessel" for CHASE_DB1, "IRF/SRF/PED"); "foreground" when no
/// names were recorded.
pub(super) fn foreground(group: &Group) -> String {
    match group.runs[0].classes.get(1..) {
        Some(names) if !names.is_empty() => names.join("/"),
        _ => "foreground".into(),
    }
}

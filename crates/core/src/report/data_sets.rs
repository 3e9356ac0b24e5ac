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

/// Notes on validation splits whose runs were scored on different files (the data set
/// changed between them, same split): their numbers are not comparable as they look.
pub(super) fn changed_files(groups: &[Group]) -> Vec<String> {
    // data config (its JSON) -> val fingerprint -> runs
    let mut by_split: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for r in groups.iter().flat_map(|g| g.runs.iter()) {
        let Some(val) = r
            .data_fingerprint
            .as_deref()
            .and_then(|f| f.split(' ').nth(1))
        else {
            continue;
        };
        let config: serde_json::Value = serde_json::from_str(&r.config_json).unwrap_or_default();
        let data = config
            .get("data")
            .map(|d| d.to_string())
            .unwrap_or_default();
        *by_split
            .entry(data)
            .or_default()
            .entry(val.to_string())
            .or_default() += 1;
    }
    by_split
        .into_iter()
        .filter(|(_, versions)| versions.len() > 1)
        .map(|(data, versions)| {
            let data: serde_json::Value = serde_json::from_str(&data).unwrap_or_default();
            let counts: Vec<String> = versions
                .iter()
                .map(|(v, n)| format!("{n} run(s) on {v}"))
                .collect();
            format!(
                "Changed data: runs of {} with the same split were scored on different validation files ({}); \
                 the files changed between them, so their differences are not only the models'.\n",
                data.get("root").and_then(|r| r.as_str()).unwrap_or("the data set"),
                counts.join(", ")
            )
        })
        .collect()
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

/// Warnings for the finished jobs of `sweep` whose files changed since their result: each
/// data set (its `data` config) with the fingerprint of its files now, from the data check.
pub async fn changed_since(
    store: &dyn crate::store::Store,
    sweep: &str,
    now: &[(crate::job::DataConfig, String)],
) -> anyhow::Result<Vec<String>> {
    if store.sweep_id(sweep).await?.is_none() {
        return Ok(Vec::new());
    }
    let mut changed: BTreeMap<String, usize> = BTreeMap::new();
    for row in store.report_rows(Some(sweep)).await? {
        // An external row's files are checked when it is scored (`sweep evaluate`).
        let Some(recorded) = row
            .data_fingerprint
            .as_ref()
            .filter(|_| row.external.is_none())
        else {
            continue;
        };
        let Some(data) = row.train_config()?.map(|c| c.data) else {
            continue;
        };
        if let Some((_, current)) = now.iter().find(|(d, _)| *d == data) {
            if current != recorded {
                *changed.entry(data.root.display().to_string()).or_default() += 1;
            }
        }
    }
    Ok(changed
        .into_iter()
        .map(|(root, n)| {
            format!(
                "the files under {n} finished job(s) on {root} changed since they ran: their results \
                 stay as recorded (`sweep report` notes the change); to retrain on the files as they \
                 are now, run the sweep under a new name (--set name=...) or into another database"
            )
        })
        .collect())
}

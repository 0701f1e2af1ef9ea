//! Looking at a checkpoint store from the outside: the fs store and s3s-fs
//! both keep objects as plain files under a folder.

use std::collections::BTreeSet;
use std::path::Path;

use dataflow::checkpoint::metadata::Metadata;

/// The complete checkpoints (with a readable `_metadata`) in a job folder,
/// oldest first. A `_metadata` being written while a job runs is skipped.
pub fn completed(job_dir: &Path) -> Vec<Metadata> {
    let Ok(entries) = std::fs::read_dir(job_dir) else {
        return Vec::new();
    };
    let mut out: Vec<Metadata> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("chk-"))
        .filter_map(|d| std::fs::read(d.join("_metadata")).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect();
    out.sort_by_key(|m| m.checkpoint_id);
    out
}

/// Every file under `dir`, as store paths (`<prefix>/...`); folders are ignored.
pub fn files_under(dir: &Path, prefix: &str) -> BTreeSet<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let e = e.unwrap();
            let name = format!("{prefix}/{}", e.file_name().to_string_lossy());
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &name, out);
            } else {
                out.insert(name);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, prefix, &mut out);
    out
}

/// Every record the file sink committed in `out`.
pub fn committed_records(out: &Path) -> Vec<serde_json::Value> {
    let Ok(entries) = std::fs::read_dir(out) else {
        return Vec::new();
    };
    let mut records = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with('.') {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            records.push(serde_json::from_str(line).unwrap());
        }
    }
    records
}

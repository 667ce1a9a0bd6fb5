//! The trained tables botify loads from its models folder (popularity and
//! the item-to-item tables), read the way botify reads them, and the list a
//! table proposes for a query.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use super::model::{Model, NamedModel};
use crate::train::{self, ITEM2ITEM, ITEM2ITEM_ALS, TOP_TRACKS};

/// Tables only: a recommender's list comes from
/// [`Served::recommend_list`](super::Served::recommend_list).
impl Model {
    /// Up to `k` candidates after `track`, skipping `heard` (tables only).
    pub(super) fn candidates(&self, track: u32, heard: &[u32], k: usize, out: &mut Vec<u32>) {
        out.clear();
        let list = match self {
            Model::Popularity(top) => top.as_slice(),
            Model::ItemToItem(table) => table.get(&track).map_or(&[][..], |v| v.as_slice()),
            Model::Recommender(_) => &[],
        };
        out.extend(list.iter().filter(|t| !heard.contains(t)).take(k));
    }
}

/// Loads the model files in `dir` the way botify does: `top_tracks.json` and
/// every `item2item*.jsonl` table (by name order). Fails when there is none.
pub fn load_models(dir: &Path) -> Result<Vec<NamedModel>> {
    let models = load_tables(dir)?;
    if models.is_empty() {
        bail!(
            "no model files in {}: expected {TOP_TRACKS}, {ITEM2ITEM} or {ITEM2ITEM_ALS}; \
             create them with `analysis train --out {}`",
            dir.display(),
            dir.display()
        );
    }
    Ok(models)
}

/// [`load_models`], but a folder without tables gives an empty list (the
/// recommenders still run, on catalog metadata).
pub fn load_tables(dir: &Path) -> Result<Vec<NamedModel>> {
    let mut models = Vec::new();
    let top = dir.join(TOP_TRACKS);
    if top.is_file() {
        models.push(NamedModel {
            name: "popularity".to_string(),
            model: Model::Popularity(train::read_top_tracks(&top)?),
        });
    }
    let entries = fs::read_dir(dir).with_context(|| {
        format!(
            "cannot list models folder {}: check the --models path",
            dir.display()
        )
    })?;
    let mut tables: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list models folder {}", dir.display()))?
            .path();
        let stem = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jsonl"));
        if let Some(stem) = stem.filter(|s| s.starts_with("item2item")) {
            tables.push((stem.to_string(), path));
        }
    }
    tables.sort();
    for (name, path) in tables {
        models.push(NamedModel {
            name,
            model: Model::ItemToItem(train::read_item_table(&path)?),
        });
    }
    Ok(models)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::fixtures::catalog;
    use crate::eval::recommenders::load_recommenders;

    #[test]
    fn load_models_names_the_expected_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_models(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(TOP_TRACKS) && err.contains("analysis train"),
            "{err}"
        );
        assert!(load_tables(dir.path()).unwrap().is_empty());
        train::write_top_tracks(&dir.path().join(TOP_TRACKS), &[3, 1]).unwrap();
        train::write_item_table(&dir.path().join("item2item_x.jsonl"), &vec![(1, vec![2])])
            .unwrap();
        train::write_item_table(&dir.path().join(ITEM2ITEM), &vec![(1, vec![3])]).unwrap();
        fs::write(dir.path().join("notes.jsonl"), "not a table").unwrap();
        let models = load_models(dir.path()).unwrap();
        let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["popularity", "item2item", "item2item_x"]);
        assert_eq!(models[0].model, Model::Popularity(vec![3, 1]));
        // botify's loader reads the same folder for the recommenders.
        let recs = load_recommenders(&["contextual".into()], catalog(), dir.path()).unwrap();
        let Model::Recommender(served) = &recs[0].model else {
            panic!("not a recommender")
        };
        assert_eq!(
            served.models.table("item2item").unwrap().neighbours(1),
            &[3]
        );
        assert_eq!(recs[0].model, recs[0].model.clone());
        assert_ne!(recs[0].model, models[0].model);
    }
}

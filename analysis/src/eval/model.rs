//! What `eval` scores: a trained table or one of botify's recommenders, by
//! name. Only the types live here, so that `tables.rs` and `recommenders.rs`
//! (which give them their behaviour) depend on this module rather than on
//! each other or on `mod.rs`, which scores them.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use botify::catalog::Catalog;
use botify::filters::Filters;
use botify::models::Models;
use botify::recommenders::Recommender;

/// A model as botify would serve it.
#[derive(Debug, Clone)]
pub enum Model {
    /// Global ranking, most popular first.
    Popularity(Vec<u32>),
    /// Per-track neighbours, best first.
    ItemToItem(HashMap<u32, Vec<u32>>),
    /// One of botify's recommenders with what it reads.
    Recommender(Arc<Served>),
}

impl PartialEq for Model {
    /// Tables by content; recommenders by identity (the same loaded one).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Model::Popularity(a), Model::Popularity(b)) => a == b,
            (Model::ItemToItem(a), Model::ItemToItem(b)) => a == b,
            (Model::Recommender(a), Model::Recommender(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// A botify recommender and everything it reads, as the engine holds them.
pub struct Served {
    pub recommender: Box<dyn Recommender>,
    pub catalog: Arc<Catalog>,
    pub models: Arc<Models>,
    /// No blocked tracks offline: the logs say nothing about past filters.
    pub filters: Filters,
}

impl fmt::Debug for Served {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Served")
            .field("recommender", &self.recommender.name())
            .field("catalog_tracks", &self.catalog.len())
            .finish_non_exhaustive()
    }
}

/// A model file found in the models folder, or a recommender.
#[derive(Debug, Clone)]
pub struct NamedModel {
    /// `popularity` for `top_tracks.json`; the file stem for item-to-item
    /// tables (`item2item`, `item2item_als`, …), the name botify knows them
    /// by; a recommender's experiment name (`sticky_artist`, …).
    pub name: String,
    pub model: Model,
}

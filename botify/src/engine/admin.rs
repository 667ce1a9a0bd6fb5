//! Hot swaps: what operators and the simulator replace while requests are
//! being served.
//!
//! Each swap builds the new value aside and stores it in one `ArcSwap` (or
//! `ArcSwapOption`) write: a request in flight keeps the snapshot it loaded,
//! the next one sees the new value, and no request waits on a lock or sees a
//! half-made change.

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::Engine;
use crate::catalog::{AddTrackError, Track, TrackId};
use crate::events::EventSender;
use crate::filters::Filters;
use crate::models::{Models, ModelsError};

impl Engine {
    /// Reloads the trained tables from the models folder. On failure the
    /// current models keep serving.
    pub fn reload_models(&self) -> Result<Arc<Models>, ModelsError> {
        match Models::load(&self.models_dir) {
            Ok(models) => {
                let models = Arc::new(models);
                self.models.store(models.clone());
                tracing::info!(dir = %self.models_dir.display(), tables = models.tables.len(), "models reloaded");
                Ok(models)
            }
            Err(err) => {
                self.metrics.reload_failures.inc();
                tracing::error!(%err, "model reload failed; keeping the previous models");
                Err(err)
            }
        }
    }

    pub fn models_dir(&self) -> &Path {
        &self.models_dir
    }

    /// Adds a track to the catalog; it is servable at once.
    pub fn add_track(&self, track: Track) -> Result<TrackId, AddTrackError> {
        // Serialise adders so two concurrent additions cannot both take the
        // same id and one silently vanish.
        static ADD_LOCK: Mutex<()> = Mutex::new(());
        let _guard = ADD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let id = track.track;
        let updated = self.catalog.load().with_track(track)?;
        self.catalog.store(Arc::new(updated));
        Ok(id)
    }

    pub fn set_filters(&self, filters: Filters) {
        self.filters.store(Arc::new(filters));
    }

    /// Sends events to `events` from now on (`None`: log nothing).
    pub fn set_event_log(&self, events: Option<EventSender>) {
        self.events.store(events.map(Arc::new));
    }
}

//! The event logs a botify server wrote.

use std::path::Path;

use botify::events::Event;

/// Every line of every event log file in `dir`; panics on a line that is not
/// an event.
pub fn read_events(dir: &Path) -> Vec<Event> {
    let mut events = Vec::new();
    for entry in std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read the log folder {}: {e}", dir.display()))
    {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            events.push(serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("not an event log line ({e}) in {}: {line}", path.display())
            }));
        }
    }
    events
}

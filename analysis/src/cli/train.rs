//! Printing `analysis train`: what was read and which files were written.

use super::print_notes;
use crate::commands::train::Trained;

/// Prints a training as `analysis train` does: its notes, one line per
/// file written.
pub fn print(trained: &Trained) {
    print_notes(&trained.notes);
}

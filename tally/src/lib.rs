//! What every program of the workspace shares for keeping count of its
//! work: [`progress`] bars on stderr (one look for `analysis` and `sim`),
//! running [`Moments`] (count, mean, variance, standard error), and
//! [`parallel::fan_out`], which runs the caller's parts on threads of their
//! own.
//!
//! It is its own crate so the simulator's world, user model and runners
//! can count and summarise without linking the whole `analysis` crate
//! (log readers, Parquet, plotting); only the commands that really
//! analyse logs depend on `analysis`.

mod moments;
pub mod parallel;
pub mod progress;

pub use moments::Moments;

//! A topic: a named folder `topics/<name>/` of partition folders `0/`, `1/`, … each starting
//! with an empty first segment. Created all-or-nothing: built under `.tmp-<name>`, fsynced,
//! renamed into place, then `topics/` fsynced; on any error the temp folder (or the renamed
//! one) is removed, so a retry starts clean. A leftover temp folder is removed at open.

use std::path::Path;
use std::sync::Arc;

use super::error::{IoContext, Result, StorageError};
use super::fs;
use super::partition::{Partition, Shared};
use super::segment::{segment_paths, Truncation};

/// Largest per-topic partition limit a configuration may set
/// ([`super::LogConfig::max_partitions_per_topic`]).
pub const MAX_PARTITIONS: u32 = 1 << 16;

/// The folder a topic is built in before it is renamed into place.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// Checks a topic or group name: 1-200 characters of `[A-Za-z0-9._-]`, not starting with `.`.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidName(name.to_owned()))
    }
}

/// A topic and its partitions.
pub struct Topic {
    name: String,
    partitions: Vec<Arc<Partition>>,
}

/// Builds the topic's folders in `tmp`: a folder per partition holding its empty first
/// segment, each file closed at once (creation holds no descriptors), then fsyncs `tmp` so
/// the partition folders' names are durable before the topic's is.
fn build(tmp: &Path, partitions: u32) -> Result<()> {
    fs::create_dir(tmp)?;
    for p in 0..partitions {
        let dir = tmp.join(p.to_string());
        fs::create_dir(&dir)?;
        drop(fs::open_rw(&segment_paths(&dir, 0).0, true)?);
    }
    fs::sync_dir(tmp)
}

impl Topic {
    /// Creates the topic folder with `partitions` empty partitions, all or nothing.
    pub(crate) fn create(
        topics_dir: &Path,
        name: &str,
        partitions: u32,
        shared: &Shared,
    ) -> Result<Topic> {
        validate_name(name)?;
        if partitions == 0 {
            return Err(StorageError::InvalidPartitions(partitions));
        }
        let limit = shared.config.max_partitions_per_topic;
        if partitions > limit {
            return Err(StorageError::LimitExceeded {
                what: "partitions per topic",
                requested: u64::from(partitions),
                limit: u64::from(limit),
                setting: "max_partitions_per_topic, --max-partitions-per-topic",
            });
        }
        let tmp = topics_dir.join(format!("{TMP_PREFIX}{name}"));
        let dir = topics_dir.join(name);
        // A leftover of a creation that failed or crashed.
        fs::remove_dir_all(&tmp)?;
        if let Err(e) = build(&tmp, partitions).and_then(|()| fs::rename(&tmp, &dir)) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if let Err(e) = fs::sync_dir(topics_dir) {
            // Whether the rename is durable is unknown: take the topic out again, so the
            // error is the whole story and a retry starts clean.
            if fs::rename(&dir, &tmp).is_ok() {
                let _ = fs::remove_dir_all(&tmp);
            } else {
                let _ = fs::remove_dir_all(&dir);
            }
            return Err(e);
        }
        let partitions = (0..partitions)
            .map(|p| {
                Arc::new(Partition::created(
                    name,
                    p,
                    &dir.join(p.to_string()),
                    shared,
                ))
            })
            .collect();
        Ok(Topic {
            name: name.to_owned(),
            partitions,
        })
    }

    /// Opens the topic stored in `dir`, recovering each partition.
    pub(crate) fn open(
        dir: &Path,
        name: &str,
        shared: &Shared,
    ) -> Result<(Topic, Vec<Truncation>)> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(dir).ctx(|| format!("listing {}", dir.display()))? {
            let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
            if let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        if ids.is_empty() || ids.iter().enumerate().any(|(i, id)| i as u32 != *id) {
            return Err(StorageError::Corrupt {
                path: dir.to_owned(),
                position: 0,
                reason: format!("partition folders are not 0..n: {ids:?}"),
            });
        }
        let mut partitions = Vec::new();
        let mut truncations = Vec::new();
        for id in ids {
            let (p, t) = Partition::open(name, id, &dir.join(id.to_string()), shared)?;
            truncations.extend(t);
            partitions.push(Arc::new(p));
        }
        Ok((
            Topic {
                name: name.to_owned(),
                partitions,
            },
            truncations,
        ))
    }

    /// The topic name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The partitions, by number.
    pub fn partitions(&self) -> &[Arc<Partition>] {
        &self.partitions
    }

    /// One partition, or an error naming the topic and its partition count.
    pub fn partition(&self, id: u32) -> Result<&Arc<Partition>> {
        self.partitions
            .get(id as usize)
            .ok_or_else(|| StorageError::UnknownPartition {
                topic: self.name.clone(),
                partition: id,
                partitions: self.partitions.len() as u32,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["a", "orders", "t.1_x-y", &"x".repeat(200)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "..", "sp ace", "é", &"x".repeat(201)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}

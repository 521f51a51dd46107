//! A topic: a named folder `topics/<name>/` of partition folders `0/`, `1/`, … created
//! atomically (built under a temp name, then renamed into place).

use std::path::Path;
use std::sync::Arc;

use super::commit::Committer;
use super::config::LogConfig;
use super::error::{IoContext, Result, StorageError};
use super::fs;
use super::partition::Partition;
use super::segment::Truncation;

/// Most partitions a topic may have.
pub const MAX_PARTITIONS: u32 = 1024;

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

impl Topic {
    /// Creates the topic folder with `partitions` empty partitions, atomically.
    pub(crate) fn create(
        topics_dir: &Path,
        name: &str,
        partitions: u32,
        config: &Arc<LogConfig>,
        committer: &Arc<Committer>,
    ) -> Result<Topic> {
        validate_name(name)?;
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(StorageError::InvalidPartitions(partitions));
        }
        let tmp = topics_dir.join(format!(".tmp-{name}"));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir(&tmp)?;
        for p in 0..partitions {
            fs::create_dir(&tmp.join(p.to_string()))?;
        }
        let dir = topics_dir.join(name);
        // The partition folders' names must be durable before the topic's is.
        fs::sync_dir(&tmp)?;
        fs::rename(&tmp, &dir)?;
        fs::sync_dir(topics_dir)?;
        let (topic, _) = Topic::open(&dir, name, config, committer)?;
        Ok(topic)
    }

    /// Opens the topic stored in `dir`, recovering each partition.
    pub(crate) fn open(
        dir: &Path,
        name: &str,
        config: &Arc<LogConfig>,
        committer: &Arc<Committer>,
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
            let (p, t) = Partition::open(
                name,
                id,
                &dir.join(id.to_string()),
                config.clone(),
                committer.clone(),
            )?;
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

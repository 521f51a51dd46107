//! The depth the broker itself reported, read from the coordinator's JSON-lines samples.

use std::path::Path;

use crate::input::CheckError;
use crate::report::DepthSample;

/// The samples of `path`, times in seconds since `start_ns`; none when the file is absent.
pub(crate) fn read_depth(path: &Path, start_ns: u64) -> Result<Vec<DepthSample>, CheckError> {
    #[derive(serde::Deserialize)]
    struct Line {
        t_ns: u64,
        messages: u64,
        bytes: Option<u64>,
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CheckError::Depth {
                path: path.to_owned(),
                source,
            })
        }
    };
    // A torn last line (coordinator killed mid-write) is skipped.
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Line>(l).ok())
        .map(|l| DepthSample {
            t: l.t_ns.saturating_sub(start_ns) as f64 / 1e9,
            messages: l.messages,
            bytes: l.bytes,
        })
        .collect())
}
